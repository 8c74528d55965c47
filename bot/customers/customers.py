"""Customers added by hand (the admin API): the number read as the shop would write it,
and one customer per number."""

from __future__ import annotations

from datetime import datetime

from bot.core import phones
from bot.core.errors import ApiError
from bot.core.models import Customer
from bot.core.rows import Erased, get_or_create_customer


def create_customer(fields: dict, default_region: str, now: datetime, *, salt: str) -> Customer:
    """A new customer from `fields` (phone, optional country for a number without +,
    name, language, timezone, tags); consent is not set here but through the ledger.

    400 for a number that is not one, 409 when a customer has it already (also one
    created by a request racing this one): an admin adding a known number by mistake
    must not overwrite what the customer told us. 409 `erased` for a number whose owner
    was erased: Dakiya does not store it again, not even at an admin's request (there is
    no way to tell that the person asked to come back).
    """
    facts = dict(fields)
    phone = phones.to_e164(facts.pop("phone"), facts.pop("country", None) or default_region)
    if phone is None:
        raise ApiError(400, "invalid_body", "invalid body", {"phone": ["not a valid phone number"]})
    try:
        customer, created = get_or_create_customer(phone, now, salt=salt, **facts)
    except Erased:
        raise ApiError(
            409, "erased", "this number's owner asked to be erased; it is not stored again"
        ) from None
    if not created:
        raise ApiError(409, "exists", "a customer with this phone number exists")
    return customer
