"""What each sent message is billed as: the `pricing` on its receipts (PROVIDERS.md §9.2),
stored once per message as the webhook arrives.

Meta puts `pricing` on the `sent` receipt and again on one of `delivered`/`read`; the
first to arrive is kept (ON CONFLICT DO NOTHING on the provider's message id), so a
redelivered or repeated receipt never counts a message twice. It is stored by the
provider's id, not our message row, because a receipt can overtake the send's answer.
"""

from __future__ import annotations

from datetime import datetime

from bot.core.models import MessagePricing
from bot.core.phones import country
from bot.core.statements import BatchStatement, columns, insert_ignoring
from bot.delivery.providers.base import StatusUpdate


def pricing_rows(updates: list[StatusUpdate], now: datetime) -> list[dict]:
    """One row per message among `updates` that carries pricing, from its first receipt."""
    rows: dict[str, dict] = {}
    for update in sorted(updates, key=lambda u: u.occurred_at):
        if update.pricing is None or update.provider_message_id in rows:
            continue
        rows[update.provider_message_id] = {
            "provider": update.provider,
            "provider_message_id": update.provider_message_id,
            "billable": update.pricing.billable,
            "category": update.pricing.category,
            "type": update.pricing.type,
            "pricing_model": update.pricing.model,
            "country": country(update.recipient) or country(update.recipient_user_id),
            "priced_at": update.occurred_at,
            "received_at": now,
        }
    return list(rows.values())


def record_pricing(updates: list[StatusUpdate], now: datetime) -> int:
    """Store the pricing of the messages `updates` are receipts for (one statement; a
    message priced before keeps its row); how many messages were priced just now."""
    rows = pricing_rows(updates, now)
    if not rows:
        return 0
    return len(PRICING_INSERT.execute(rows).fetchall())  # SQL built once per row count


PRICING_INSERT = BatchStatement(
    MessagePricing,
    columns(MessagePricing),
    insert_ignoring(MessagePricing.provider_message_id, MessagePricing.id),
)
