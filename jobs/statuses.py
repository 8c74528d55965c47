"""Receipt jobs: apply stored delivery receipts in batches, and the sandbox's played-back ones."""

from __future__ import annotations

import time

from bot import intake, statuses, triggers
from bot.extensions import services
from bot.intake import take_whatsapp_updates
from bot.models import db, utcnow
from bot.providers.base import DeliveryStatus, StatusUpdate

#: How long one drain job applies receipts before it hands over to a fresh job.
DRAIN_BUDGET_SECONDS = 20.0


def apply_pending_receipts() -> int:
    """RQ entry point: apply the receipts webhooks handed over, a batch at a time, until
    none are left (or the time budget is spent: then a fresh job carries on). How many
    messages changed state.

    The trigger key is cleared first, so a receipt handed over from now on kicks a new
    job; one handed over before is popped by this one (bot.intake.hand_over_receipts).
    """
    svc = services()
    triggers.clear(svc.redis, intake.RECEIPTS_KICK_KEY)
    stop_at = time.monotonic() + DRAIN_BUDGET_SECONDS
    changed = 0
    with db.connection_context():
        while raw := svc.redis.lpop(intake.RECEIPTS_KEY, statuses.BATCH_SIZE):
            changed += statuses.apply_status_events([int(i) for i in raw], utcnow())
            if time.monotonic() >= stop_at:
                intake.kick_receipts(svc, force=True)
                break
    return changed


def apply_status_events(event_ids: list[int]) -> int:
    """RQ entry point (the sweeper's): apply these stored receipts; how many changed one."""
    with db.connection_context():
        return statuses.apply_status_events(event_ids, utcnow())


def apply_sandbox_receipt(
    provider_message_id: str, callback_data: str, to: str, status: str
) -> None:
    """RQ entry point: a receipt the sandbox plays back, taken in like a webhook's."""
    update = StatusUpdate(
        provider="sandbox",
        provider_message_id=provider_message_id,
        status=DeliveryStatus(status),
        occurred_at=utcnow(),
        recipient=to,
        callback_data=callback_data,
        raw={"id": provider_message_id, "status": status, "callback_data": callback_data},
    )
    with db.connection_context():
        take_whatsapp_updates(services(), [update], utcnow())
