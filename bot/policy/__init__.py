"""Who may be sent what and when: the pure policy, consent, frequency counters, privacy."""
