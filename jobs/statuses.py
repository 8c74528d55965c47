"""Receipt jobs: apply stored delivery receipts in batches, and the sandbox's played-back ones."""

from __future__ import annotations

from bot.core.models import db, utcnow
from bot.delivery import receipts, statuses
from bot.delivery.providers.base import DeliveryStatus, Pricing, StatusUpdate
from bot.extensions import services
from bot.intake.intake import take_whatsapp_updates

#: How long one drain job applies receipts before it hands over to a fresh job.
DRAIN_BUDGET_SECONDS = 20.0


def apply_pending_receipts() -> int:
    """RQ entry point: apply the receipts webhooks handed over (bot/delivery/receipts.py); how
    many messages changed state."""
    with db.connection_context():
        return receipts.drain(services().queues, DRAIN_BUDGET_SECONDS)


def apply_status_events(event_ids: list[int]) -> int:
    """RQ entry point (the sweeper's): apply these stored receipts; how many changed one."""
    with db.connection_context():
        return statuses.apply_status_events(event_ids, utcnow())


def apply_sandbox_receipt(
    provider_message_id: str,
    callback_data: str,
    to: str,
    status: str,
    pricing: dict | None = None,
) -> None:
    """RQ entry point: a receipt the sandbox plays back, taken in like a webhook's."""
    priced = Pricing(model="PMP", **pricing) if pricing else None
    update = StatusUpdate(
        provider="sandbox",
        provider_message_id=provider_message_id,
        status=DeliveryStatus(status),
        occurred_at=utcnow(),
        recipient=to,
        callback_data=callback_data,
        raw={
            "id": provider_message_id,
            "status": status,
            "callback_data": callback_data,
            **({"pricing": pricing} if pricing else {}),
        },
        pricing=priced,
    )
    with db.connection_context():
        take_whatsapp_updates(services(), [update], utcnow())
