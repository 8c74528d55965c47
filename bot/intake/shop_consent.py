"""Marketing consent a shop recorded without an order (Shopify's consent topics, §9.5)
into the consent ledger, with its evidence; once per delivery."""

from __future__ import annotations

from datetime import datetime

from bot.core import phones
from bot.core.models import write_transaction
from bot.core.rows import Erased, first_delivery, get_or_create_customer
from bot.intake.sources.base import ConsentUpdate
from bot.policy import consent


def take_consent_update(update: ConsentUpdate, salt: str, region: str, now: datetime) -> dict:
    """Record the change for the customer with that number (created if new: the shop
    knows them); the answer for the webhook. An erased or unusable number records
    nothing; a redelivery neither."""
    number = phones.to_e164(update.phone, region)
    with write_transaction():
        # The ledger keeps the evidence; the delivery only that it came.
        if not first_delivery(update.source, update.dedupe_key, update.topic, now):
            return {"consent": update.topic, "duplicate": True}
        if number is None:
            return {"consent": update.topic, "duplicate": False, "dropped": "invalid_phone"}
        try:
            customer, _ = get_or_create_customer(number, now, salt=salt)
        except Erased:
            return {"consent": update.topic, "duplicate": False, "dropped": "erased"}
        record = consent.record_opt_in if update.opted_in else consent.record_opt_out
        changed = record(customer, consent.MARKETING, update.source, update.evidence, now)
    return {"consent": update.topic, "duplicate": False, "changed": bool(changed)}
