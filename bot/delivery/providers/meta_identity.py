"""Who a Meta webhook item is about, beyond the phone: BSUIDs and usernames (§9.1).

A username user's message names them by `from_user_id`; the `contacts[]` entry with the
same `user_id` (or, for a message from a phone, the same `wa_id`) carries the BSUID,
`parent_user_id` and `profile.username`. System messages say when a customer's number or
BSUID changed.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.delivery.providers.base import IdentityChange, Unhandled
from bot.delivery.providers.http import (
    NotActedOn,
    cut,
    ensure_object,
    optional,
    phone_number,
    provider_id,
)

#: The system messages that re-key a customer (Meta's system messages reference, and
#: its changelog of 2026-08-11: `previous_user_id` on both).
IDENTITY_CHANGES = frozenset({"user_changed_number", "user_changed_user_id"})

#: A BSUID is "CC." and up to 128 alphanumerics (a parent one "CC.ENT.…"): the columns
#: hold 160. An identifier is never cut: a longer value is not one (None).
MAX_USER_ID = 160
MAX_USERNAME = 64


@dataclass(frozen=True, slots=True)
class Identity:
    """The BSUID, parent BSUID and username an inbound message carries (each may be None)."""

    user_id: str | None = None
    parent_user_id: str | None = None
    username: str | None = None


def bsuid(value: Any) -> str | None:
    """A BSUID from a webhook field, or None when absent, not a string or too long to be
    one (cutting it would name someone else)."""
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > MAX_USER_ID:
        return None
    return value.strip()


def sender_identity(msg: dict, contacts: list[dict]) -> Identity:
    """The sender's BSUID identity from `messages[]` and its `contacts[]` entry: the one
    with the message's `from_user_id`, else the one whose `wa_id` is the message's `from`
    (Meta's own examples carry the BSUID on the contact only)."""
    user_id = bsuid(msg.get("from_user_id"))
    sender = msg.get("from")
    contact = next(
        (
            c
            for c in contacts
            if (user_id and c.get("user_id") == user_id)
            or (not user_id and isinstance(sender, str) and sender and c.get("wa_id") == sender)
        ),
        None,
    )
    if contact is None:
        return Identity(user_id=user_id)
    profile = contact.get("profile") if isinstance(contact.get("profile"), dict) else {}
    username = profile.get("username")
    username = username.strip() if isinstance(username, str) else None
    return Identity(
        user_id=user_id or bsuid(contact.get("user_id")),
        parent_user_id=bsuid(contact.get("parent_user_id")),
        username=cut(username, MAX_USERNAME) or None,
    )


def identity_change(msg: dict, where: str, occurred_at: datetime) -> IdentityChange:
    """A `type: system` message: who the customer was and is now. Other system messages
    (`customer_identity_changed`, a security-code change) are kept raw."""
    system = ensure_object(msg.get("system"), f"{where}.system")
    kind = optional(system, "type", str, f"{where}.system")
    if kind not in IDENTITY_CHANGES:
        raise NotActedOn(
            Unhandled.UNKNOWN_TYPE,
            f"{where}.system.type: Dakiya does not act on {str(kind)[:40]!r}",
        )
    old_phone = phone_number(system.get("customer")) or phone_number(msg.get("from"))
    old_user_id = bsuid(system.get("previous_user_id")) or bsuid(msg.get("from_user_id"))
    new_phone = phone_number(system.get("wa_id")) or phone_number(system.get("new_wa_id"))
    change = IdentityChange(
        provider="meta",
        provider_message_id=provider_id(msg, "id", where),
        occurred_at=occurred_at,
        old_phone=old_phone,
        old_user_id=old_user_id,
        phone=new_phone if kind == "user_changed_number" else None,
        user_id=bsuid(system.get("user_id")),
        parent_user_id=bsuid(system.get("parent_user_id")),
        raw=msg,
    )
    if not (change.old_phone or change.old_user_id) or not (change.phone or change.user_id):
        raise ValueError(f"{where}.system: names no old or no new number or BSUID")
    return change
