"""The customer behind each WhatsApp update: the sender of a message, the customer who
changed a marketing preference in WhatsApp, the one whose number or BSUID changed, and
the recipient a receipt names by BSUID.

Each is resolved by bot/policy/identities.py (number, BSUID or both; linked, merged when
two rows turn out to be one person). What a merge moved between customers is collected
in `Merges`, so the caller can have their send counters rebuilt after the commit.
"""

from __future__ import annotations

from datetime import datetime

import redis

from bot.core.models import Customer, Message, fit
from bot.core.rows import Erased
from bot.delivery.providers.base import IdentityChange, PreferenceUpdate, StatusUpdate
from bot.delivery.providers.base import InboundMessage as Inbound
from bot.policy import consent, counters
from bot.policy.identities import Identity, Resolved, rekey, resolve


class Merges(set[int]):
    """Customer ids a merge touched during one delivery (their counters are stale)."""

    def add_from(self, resolved: Resolved | None) -> Customer | None:
        if resolved is None:
            return None
        self.update(resolved.merged)
        return resolved.customer

    def forget_counters(self, conn: redis.Redis) -> None:
        """After the commit: drop the Redis send histories of merged customers, so the
        next decision rebuilds them from the database (which now has every send)."""
        if self:
            counters.forget_histories(conn, sorted(self))


def touch_customer(message: Inbound, now: datetime, salt: str, merges: Merges) -> Customer:
    """The customer who wrote, created on first contact and linked to what the message
    says about them (number, BSUID, username); their window opens now. Raises `Erased`."""
    identity = Identity(
        # A username user who tapped our request-contact-info button shared their own
        # number: it links (or merges) them with the customer the shop knows by it.
        phone=message.from_phone or message.shared_phone,
        user_id=message.from_user_id,
        parent_user_id=message.parent_user_id,
        username=message.username,
    )
    # A new customer is named as they named themselves (typed by them: cut to fit).
    name = fit(Customer.name, message.profile_name)
    customer = merges.add_from(resolve(identity, now, salt=salt, name=name))
    last = customer.last_inbound_at
    customer.last_inbound_at = max(last, message.occurred_at) if last else message.occurred_at
    customer.updated_at = now
    customer.save(only=[Customer.last_inbound_at, Customer.updated_at])
    return customer


def record_preference(
    update: PreferenceUpdate, now: datetime, *, salt: str, merges: Merges
) -> bool:
    """A marketing stop/resume the customer chose in WhatsApp itself: consent evidence.
    False, storing nothing, for an erased number or BSUID (it is never messaged anyway)."""
    try:
        resolved = resolve(Identity(phone=update.phone, user_id=update.user_id), now, salt=salt)
    except Erased:
        return False
    customer = merges.add_from(resolved)
    evidence = {
        "provider": update.provider,
        "detail": update.detail,
        "at": update.occurred_at.isoformat(),
    }
    source = f"{update.provider}_preferences"
    if update.opted_in:
        consent.record_opt_in(customer, consent.MARKETING, source, evidence, now)
    else:
        consent.record_opt_out(customer, consent.MARKETING, source, evidence, now)
    return True


def record_identity_change(
    change: IdentityChange, now: datetime, *, salt: str, merges: Merges
) -> bool:
    """Re-key the customer whose number or BSUID changed; False when Dakiya did not know
    them or the new identity was erased (nothing is stored then)."""
    old = Identity(phone=change.old_phone, user_id=change.old_user_id)
    new = Identity(phone=change.phone, user_id=change.user_id, parent_user_id=change.parent_user_id)
    try:
        return merges.add_from(rekey(old, new, now, salt=salt)) is not None
    except Erased:
        return False


def link_recipients(
    receipts: list[StatusUpdate], now: datetime, *, salt: str, merges: Merges
) -> int:
    """Learn the BSUIDs receipts name (`recipient_user_id`, §9.1) for customers Dakiya
    already knows: by the receipt's number, or, when it has none, by the customer its
    message went to. Linked (merged when the BSUID was another row's); a receipt never
    creates a customer, and an erased number or BSUID is left alone. How many changed."""
    pending: dict[tuple[str | None, str], StatusUpdate] = {}
    for receipt in receipts:
        if receipt.recipient_user_id:
            pending.setdefault((receipt.recipient, receipt.recipient_user_id), receipt)
    if not pending:
        return 0
    # Two queries for the whole batch (every 2026 receipt names a BSUID), not one each.
    sent_to = _message_phones([r for (phone, _), r in pending.items() if phone is None])
    phones = {phone or sent_to.get(r.provider_message_id) for (phone, _), r in pending.items()}
    known = {c.phone: c for c in Customer.select().where(Customer.phone.in_(phones - {None}))}
    linked = 0
    for (phone, user_id), receipt in pending.items():
        phone = phone or sent_to.get(receipt.provider_message_id)
        customer = known.get(phone) if phone else None
        if customer is None or customer.user_id == user_id:
            continue
        identity = Identity(
            phone=phone, user_id=user_id, parent_user_id=receipt.recipient_parent_user_id
        )
        try:
            merges.add_from(resolve(identity, now, salt=salt))
        except Erased:
            continue
        linked += 1
    return linked


def _message_phones(receipts: list[StatusUpdate]) -> dict[str, str]:
    """The numbers the receipts' messages went to, by provider message id, for those
    recorded yet (a receipt can overtake its send's answer)."""
    if not receipts:
        return {}
    ids = {r.provider_message_id for r in receipts}
    providers = {r.provider for r in receipts}
    query = Message.select(Message.provider_message_id, Message.phone).where(
        Message.provider.in_(providers) & Message.provider_message_id.in_(ids)
    )
    return {m.provider_message_id: m.phone for m in query if m.phone}
