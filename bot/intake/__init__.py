"""Taking deliveries in: order sources, the outbox, reminders, the spool drain and its
dead letters."""
