"""The send-time policy: may this message go out now? Pure: no I/O, no clock.

The job gathers the facts, `decide` decides, the job acts. Checked when a message is
claimed for sending, not only when it was created, so an opt-out that arrives while a
message waits in the queue still stops it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.models import Category, Reason

#: Free-form (non-template) messages only within 24 h of the customer's last message
#: (PROVIDERS.md §1.12); outside it Meta answers 131047.
SERVICE_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class CustomerFacts:
    opted_out: bool = False
    marketing_opt_in: bool = False
    last_inbound_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class MessageFacts:
    category: Category
    has_valid_phone: bool = True
    free_form: bool = False
    # The one message an opted-out customer still gets: the confirmation of their STOP.
    opt_out_confirmation: bool = False


@dataclass(frozen=True, slots=True)
class Send:
    pass


@dataclass(frozen=True, slots=True)
class Defer:
    until: datetime
    reason: Reason


@dataclass(frozen=True, slots=True)
class Suppress:
    reason: Reason


Decision = Send | Defer | Suppress


def in_service_window(last_inbound_at: datetime | None, now: datetime) -> bool:
    return last_inbound_at is not None and now - last_inbound_at < SERVICE_WINDOW


def decide(customer: CustomerFacts, message: MessageFacts, now: datetime) -> Decision:
    """Send, defer or suppress `message` to `customer` at `now`.

    Opt-out wins over everything but its own confirmation; free-form text needs an
    open customer-service window; marketing additionally needs an explicit opt-in.
    """
    if not message.has_valid_phone:
        return Suppress(Reason.INVALID_PHONE)
    if customer.opted_out and not message.opt_out_confirmation:
        return Suppress(Reason.OPTED_OUT)
    if message.free_form and not in_service_window(customer.last_inbound_at, now):
        return Suppress(Reason.WINDOW_CLOSED)
    if message.category == Category.MARKETING and not customer.marketing_opt_in:
        return Suppress(Reason.NO_MARKETING_CONSENT)
    return Send()
