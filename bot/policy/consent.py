"""The consent ledger: every opt-in and opt-out is an appended ConsentEvent, written in
the same transaction as the customer's current state, with the evidence for it."""

from __future__ import annotations

from datetime import datetime

from bot.core.events import ConsentChanged, publish
from bot.core.models import Category, ConsentEvent, Customer, Message, Reason, State

ALL = "all"  # every business-initiated message
MARKETING = "marketing"


def record_opt_out(
    customer: Customer, category: str, source: str, evidence: dict, now: datetime
) -> bool:
    """Opt `customer` out of `category`; False (and nothing written) if already out.

    Messages still waiting in the queue that the new state forbids are suppressed at
    once; the send-time policy would stop them anyway, this makes it visible now.
    """
    field = Customer.opted_out if category == ALL else Customer.marketing_opt_in
    wanted = category == ALL  # opted_out=True, or marketing_opt_in=False
    if getattr(customer, field.name) == wanted:
        return False
    setattr(customer, field.name, wanted)
    _append(customer, category, "opt_out", source, evidence, now)
    waiting = (Message.customer == customer) & Message.state.in_([State.QUEUED, State.DEFERRED])
    if category == MARKETING:
        waiting &= Message.category == Category.MARKETING
    Message.update(state=State.SUPPRESSED, reason=Reason.OPTED_OUT, updated_at=now).where(
        waiting
    ).execute()
    return True


def record_opt_in(
    customer: Customer, category: str, source: str, evidence: dict, now: datetime
) -> bool:
    """Opt `customer` back in to `category`; False (and nothing written) if already in."""
    field = Customer.opted_out if category == ALL else Customer.marketing_opt_in
    wanted = category != ALL  # opted_out=False, or marketing_opt_in=True
    if getattr(customer, field.name) == wanted:
        return False
    setattr(customer, field.name, wanted)
    _append(customer, category, "opt_in", source, evidence, now)
    return True


def _append(
    customer: Customer, category: str, action: str, source: str, evidence: dict, now: datetime
) -> None:
    customer.updated_at = now
    customer.save()
    ConsentEvent.create(
        customer=customer,
        category=category,
        action=action,
        source=source,
        evidence=evidence,
        created_at=now,
    )
    publish(ConsentChanged(customer, category, action, source), now)
