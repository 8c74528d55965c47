"""Inbox jobs: take in the webhook deliveries kept raw by their requests
(bot/intake/inbox.py), customer messages first."""

from __future__ import annotations

from bot.core.models import db, utcnow
from bot.delivery import statuses
from bot.extensions import services
from bot.intake.inbox import Lane, drain
from jobs.inbound import handle_inbound_messages

#: How long one drain job takes deliveries in before it hands over to a fresh job.
DRAIN_BUDGET_SECONDS = 20.0


def apply_receipts(receipt_ids: list[int]) -> int:
    return statuses.apply_status_events(receipt_ids, utcnow())


def take_inbound() -> int:
    """RQ entry point (orders queue): take in kept deliveries with customer messages and
    answer them at once; how many deliveries were taken in."""
    with db.connection_context():
        drained = drain(
            services(),
            Lane.INBOUND,
            DRAIN_BUDGET_SECONDS,
            apply=apply_receipts,
            answer=handle_inbound_messages,
        )
    return drained.entries


def take_receipts() -> int:
    """RQ entry point (statuses queue): take in kept receipts and apply them, lingering
    for more (RECEIPT_DRAIN_LINGER_SECONDS) and stepping aside between batches whenever
    a job waits on the orders queue (customer messages, order updates); how many
    deliveries."""
    svc = services()
    orders = svc.queues["orders"]
    with db.connection_context():
        drained = drain(
            svc,
            Lane.RECEIPTS,
            DRAIN_BUDGET_SECONDS,
            apply=apply_receipts,
            answer=handle_inbound_messages,
            linger_seconds=svc.settings.receipt_drain_linger_seconds,
            step_aside=lambda: orders.count > 0,
        )
    return drained.entries
