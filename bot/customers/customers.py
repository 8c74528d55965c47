"""Customers added by hand (the admin API): the number read as the shop would write it,
and one customer per number."""

from __future__ import annotations

from datetime import datetime

from bot.core import phones
from bot.core.errors import ApiError
from bot.core.models import SENDABLE_STATES, Customer, Message
from bot.core.rows import Erased, get_or_create_customer
from bot.core.suppression import is_suppressed


def create_customer(fields: dict, default_region: str, now: datetime, *, salt: str) -> Customer:
    """A new customer from `fields` (phone, optional country for a number without +,
    name, language, timezone, tags); consent is not set here but through the ledger.

    400 for a number that is not one, 409 when a customer has it already (also one
    created by a request racing this one), naming that customer: an admin adding a known
    number by mistake must not overwrite what the customer told us. 409 `erased` for a
    number whose owner was erased: Dakiya does not store it again, not even at an admin's
    request (there is no way to tell that the person asked to come back).
    """
    facts = dict(fields)
    phone = read_phone(facts.pop("phone"), facts.pop("country", None) or default_region)
    if facts.get("language"):
        facts["language_source"] = "admin"  # a choice, not a hint (issue 15)
    try:
        customer, created = get_or_create_customer(phone, now, salt=salt, **facts)
    except Erased:
        raise erased() from None
    if not created:
        raise exists(customer)
    return customer


def read_phone(raw: str, region: str) -> str:
    """`raw` in E.164 (read in `region` without a +), else a 400 naming the field."""
    phone = phones.to_e164(raw, region)
    if phone is None:
        raise ApiError(400, "invalid_body", "invalid body", {"phone": ["not a valid phone number"]})
    return phone


def erased() -> ApiError:
    """The 409 for a number whose owner asked to be erased."""
    return ApiError(409, "erased", "this number's owner asked to be erased; it is not stored again")


def exists(customer: Customer) -> ApiError:
    """The 409 for a number `customer` has already: its id in the message, the field and
    a Location header, so the caller can go to it instead."""
    return ApiError(
        409,
        "exists",
        f"customer {customer.id} has this phone number",
        {"phone": [f"customer {customer.id} has this phone number"]},
        headers={"Location": f"/admin/api/customers/{customer.id}"},
    )


def change_phone(customer: Customer, raw: str, region: str, now: datetime, *, salt: str) -> None:
    """Give `customer` a new number (a person who changed numbers), in E.164.

    400 when it is not a number, 409 naming the customer who has it (409 `erased` for
    an erased number). What is the
    person's stays theirs: the consent ledger, orders and history (erasure finds them by
    the customer as well as by number). What belonged to the old number does not move:
    the 24-hour service window closes (the new number has not written to us), and the
    messages still waiting to be sent go to the new number instead of the old one, which
    may be someone else's now. Messages already sent keep the number they went to.
    """
    phone = read_phone(raw, region)
    if phone == customer.phone:
        return
    if is_suppressed(phone, salt):
        raise erased()
    taken = Customer.get_or_none(Customer.phone == phone)
    if taken is not None:
        raise exists(taken)
    customer.phone = phone
    customer.last_inbound_at = None
    Message.update(phone=phone).where(
        (Message.customer == customer) & Message.state.in_(SENDABLE_STATES)
    ).execute()
