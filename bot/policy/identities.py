"""Who a customer is: a phone number, a WhatsApp business-scoped user id (BSUID), or both
(PROVIDERS.md §9.1).

Every webhook item that names a customer resolves them here. The BSUID is looked up
first, then the number. What the item adds is linked: a BSUID to the customer known by
the number, a number to the customer known by the BSUID. When the number and the BSUID
turn out to be two customer rows, they are one person and the rows are merged: the row
known by the number stays (orders arrive by number), the other's messages, orders,
inbound messages, consent ledger and conversions move to it, the stricter consent wins,
the 24-hour window is the later one, and the merge is audited. A changed BSUID
(`user_changed_user_id`, or the new BSUID of a `user_changed_number`) re-keys the
customer who had the old one.

Policy level: consent and the audit log are below it; intake and conversation above.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from bot.core import phones
from bot.core.audit import audit
from bot.core.models import (
    SENDABLE_STATES,
    ConsentEvent,
    ConversionEvent,
    Customer,
    InboundMessage,
    Message,
    Order,
)
from bot.core.rows import Erased, get_or_create_bsuid_customer, get_or_create_customer
from bot.core.suppression import suppressed_among
from bot.policy import consent

log = logging.getLogger(__name__)

MERGE_SOURCE = "merge"


@dataclass(frozen=True, slots=True)
class Identity:
    """What a webhook item says about who the customer is (each part may be missing)."""

    phone: str | None = None  # E.164
    user_id: str | None = None  # BSUID
    parent_user_id: str | None = None
    username: str | None = None

    @property
    def known(self) -> bool:
        return bool(self.phone or self.user_id)


@dataclass(frozen=True, slots=True)
class Resolved:
    customer: Customer
    created: bool
    #: Customer ids whose send counters must be rebuilt (a merge moved sends between them).
    merged: tuple[int, ...] = ()


def keys_of(customer: Customer) -> list[str]:
    """The customer's number and BSUID, whichever are known (what suppression checks)."""
    return [key for key in (customer.phone, customer.user_id) if key]


def find(identity: Identity) -> Customer | None:
    """The customer this identity names, BSUID first (it is what Meta always sends)."""
    if identity.user_id:
        found = Customer.get_or_none(Customer.user_id == identity.user_id)
        if found is not None:
            return found
    if identity.phone:
        return Customer.get_or_none(Customer.phone == identity.phone)
    return None


def resolve(identity: Identity, now: datetime, *, salt: str, name: str | None = None) -> Resolved:
    """The customer `identity` names, created on first contact, linked to every part of
    the identity it did not have yet, and merged with the row holding the other part.

    Raises `Erased`, changing nothing, when the number or the BSUID was erased; raises
    ValueError for an identity with neither (the caller's parser should not give one).
    """
    if not identity.known:
        raise ValueError("an identity needs a phone number or a BSUID")
    if suppressed_among([identity.phone, identity.user_id], salt):
        raise Erased("the owner of this number or BSUID was erased")
    by_user = (
        Customer.get_or_none(Customer.user_id == identity.user_id) if identity.user_id else None
    )
    by_phone = Customer.get_or_none(Customer.phone == identity.phone) if identity.phone else None
    merged: tuple[int, ...] = ()
    created = False
    if by_user is not None and by_phone is not None and by_user.id != by_phone.id:
        customer = merge(by_phone, by_user, now, reason="same person")
        merged = (by_phone.id, by_user.id)
    else:
        customer = by_phone or by_user
    if customer is None:
        facts = {"name": name} if name else {}
        if identity.phone:
            customer, created = get_or_create_customer(identity.phone, now, salt=salt, **facts)
        else:
            customer, created = get_or_create_bsuid_customer(
                identity.user_id, now, salt=salt, **facts
            )
    link(customer, identity, now)
    return Resolved(customer, created, merged)


def link(customer: Customer, identity: Identity, now: datetime) -> bool:
    """Give `customer` the parts of `identity` it lacks or that changed; True if any did.

    A number is only added to a customer without one (a number change is the admin's
    `change_phone` or Meta's `user_changed_number`); the BSUID, parent BSUID and
    username are Meta's latest word. Messages still waiting for a customer who had no
    number get it: Meta prefers sending to the number when it is known.
    """
    changes = {}
    if identity.phone and customer.phone is None:
        changes["phone"] = identity.phone
        changes["timezone"] = customer.timezone or phones.time_zone(identity.phone)
    for part in ("user_id", "parent_user_id", "username"):
        value = getattr(identity, part)
        if value and getattr(customer, part) != value:
            changes[part] = value
    if not changes:
        return False
    for part, value in changes.items():
        setattr(customer, part, value)
    customer.updated_at = now
    customer.save(only=[getattr(Customer, part) for part in changes] + [Customer.updated_at])
    if "phone" in changes:
        Message.update(phone=customer.phone).where(
            (Message.customer == customer)
            & Message.phone.is_null()
            & Message.state.in_(SENDABLE_STATES)
        ).execute()
    return True


def rekey(old: Identity, new: Identity, now: datetime, *, salt: str) -> Resolved | None:
    """WhatsApp says the customer who was `old` (a BSUID, a number) is now `new` (a new
    BSUID; a new number after a number change). Their row takes the new identity, merged
    with a row that already holds it; None when Dakiya never knew them (the new identity
    is then learned from their next message).

    A new number replaces the old one when no other customer has it, and the messages
    still waiting go to it; the service window closes as with an admin's number change
    (the new number has not written to us yet).
    """
    customer = find(old)
    if customer is None:
        return None
    if suppressed_among([new.phone, new.user_id], salt):
        raise Erased("the owner of this number or BSUID was erased")
    merged: tuple[int, ...] = ()
    holder = find(Identity(user_id=new.user_id)) if new.user_id else None
    if holder is not None and holder.id != customer.id:
        customer = merge(customer, holder, now, reason="identity changed")
        merged = (customer.id, holder.id)
    if new.phone and new.phone != customer.phone:
        if not Customer.select().where(Customer.phone == new.phone).exists():
            customer.phone = new.phone
            customer.last_inbound_at = None
            customer.save(only=[Customer.phone, Customer.last_inbound_at])
            Message.update(phone=new.phone).where(
                (Message.customer == customer) & Message.state.in_(SENDABLE_STATES)
            ).execute()
    link(customer, new, now)
    # Which parts changed, by name: the audit log names no one.
    changed = [part for part in ("phone", "user_id") if getattr(new, part)]
    audit("system", "rekey_customer", str(customer.id), {"changed": changed}, now)
    return Resolved(customer, False, merged)


def merge(keep: Customer, gone: Customer, now: datetime, *, reason: str) -> Customer:
    """Fold the customer row `gone` into `keep` (one person, two rows) and delete it.

    Everything that was `gone`'s becomes `keep`'s; the stricter consent wins (per
    category, among the rows whose ledger says anything about it), the consent change
    is written to the ledger with the merge as its evidence; the service window is the
    later of the two; identity parts `keep` lacks are taken from `gone`. Audited by
    customer ids, never by number. Run it inside the caller's transaction.
    """
    strict_out = keep.opted_out or gone.opted_out
    marketing = _merged_marketing(keep, gone)
    moved = {
        "messages": Message.update(customer=keep).where(Message.customer == gone).execute(),
        "orders": Order.update(customer=keep).where(Order.customer == gone).execute(),
        "inbound_messages": InboundMessage.update(customer=keep)
        .where(InboundMessage.customer == gone)
        .execute(),
        "consent_events": ConsentEvent.update(customer=keep)
        .where(ConsentEvent.customer == gone)
        .execute(),
    }
    # A conversion both rows recorded for the same order stays once.
    already = ConversionEvent.select(ConversionEvent.order_ref).where(
        ConversionEvent.customer == keep
    )
    ConversionEvent.delete().where(
        (ConversionEvent.customer == gone) & ConversionEvent.order_ref.in_(already)
    ).execute()
    moved["conversions"] = (
        ConversionEvent.update(customer=keep).where(ConversionEvent.customer == gone).execute()
    )
    taken = {part: getattr(gone, part) for part in ("phone", "user_id", "parent_user_id")}
    Customer.delete().where(Customer.id == gone.id).execute()  # frees its unique keys
    for part, value in taken.items():
        if getattr(keep, part) is None and value:
            setattr(keep, part, value)
    for part in ("username", "name", "language", "timezone", "wa_id"):
        if getattr(keep, part) is None:
            setattr(keep, part, getattr(gone, part))
    keep.tags = sorted(set(keep.tags or []) | set(gone.tags or []))
    keep.last_inbound_at = _later(keep.last_inbound_at, gone.last_inbound_at)
    keep.last_fallback_reply_at = _later(keep.last_fallback_reply_at, gone.last_fallback_reply_at)
    keep.needs_agent_since = _earlier(keep.needs_agent_since, gone.needs_agent_since)
    keep.updated_at = now
    keep.save()
    evidence = {"merged_customer_id": gone.id, "reason": reason}
    if strict_out:
        consent.record_opt_out(keep, consent.ALL, MERGE_SOURCE, evidence, now)
    if marketing is False:
        consent.record_opt_out(keep, consent.MARKETING, MERGE_SOURCE, evidence, now)
    elif marketing is True:
        consent.record_opt_in(keep, consent.MARKETING, MERGE_SOURCE, evidence, now)
    audit(
        "system",
        "merge_customers",
        str(keep.id),
        {"merged_customer_id": gone.id, "reason": reason, "moved": moved},
        now,
    )
    log.info("customer %s merged into %s (%s)", gone.id, keep.id, reason)
    return keep


def _merged_marketing(keep: Customer, gone: Customer) -> bool | None:
    """Marketing consent after a merge: only the rows whose ledger speaks of marketing
    vote, and any "no" wins; None when neither row has said anything."""
    voters = {
        row.customer_id
        for row in ConsentEvent.select(ConsentEvent.customer)
        .where(
            ConsentEvent.customer.in_([keep.id, gone.id])
            & (ConsentEvent.category == consent.MARKETING)
        )
        .group_by(ConsentEvent.customer)
    }
    votes = [c.marketing_opt_in for c in (keep, gone) if c.id in voters]
    return all(votes) if votes else None


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return max(a, b) if a and b else a or b


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    return min(a, b) if a and b else a or b
