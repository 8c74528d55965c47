"""The send-time policy: may this message go out now? Pure: no I/O, no clock.

The job gathers the facts, `decide` decides, the job acts. Checked when a message is
claimed for sending, not only when it was created, so an opt-out that arrives while a
message waits in the queue still stops it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.models import Category, Reason


@dataclass(frozen=True, slots=True)
class CustomerFacts:
    opted_out: bool = False
    marketing_opt_in: bool = False


@dataclass(frozen=True, slots=True)
class MessageFacts:
    category: Category
    has_valid_phone: bool = True


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


def decide(customer: CustomerFacts, message: MessageFacts, now: datetime) -> Decision:
    """Send, defer or suppress `message` to `customer` at `now`.

    Opt-out wins over everything; marketing additionally needs an explicit opt-in.
    """
    if not message.has_valid_phone:
        return Suppress(Reason.INVALID_PHONE)
    if customer.opted_out:
        return Suppress(Reason.OPTED_OUT)
    if message.category == Category.MARKETING and not customer.marketing_opt_in:
        return Suppress(Reason.NO_MARKETING_CONSENT)
    return Send()
