"""Customers added by hand (the admin API): the number read as the shop would write it,
and one customer per number."""

from __future__ import annotations

from datetime import datetime

from bot.core import phones
from bot.core.errors import ApiError
from bot.core.models import Customer
from bot.core.rows import get_or_create_customer


def create_customer(fields: dict, default_region: str, now: datetime) -> Customer:
    """A new customer from `fields` (phone, optional country for a number without +,
    name, language, timezone, tags); consent is not set here but through the ledger.

    400 for a number that is not one, 409 when a customer has it already (also one
    created by a request racing this one): an admin adding a known number by mistake
    must not overwrite what the customer told us.
    """
    facts = dict(fields)
    phone = phones.to_e164(facts.pop("phone"), facts.pop("country", None) or default_region)
    if phone is None:
        raise ApiError(400, "invalid_body", "invalid body", {"phone": ["not a valid phone number"]})
    customer, created = get_or_create_customer(phone, now, **facts)
    if not created:
        raise ApiError(409, "exists", "a customer with this phone number exists")
    return customer
