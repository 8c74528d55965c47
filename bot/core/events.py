"""Domain events: what the ledgers tell whoever listens, without knowing who that is.

Consent, receipts, sending and intake publish; the CRM integration
(`bot.integrations.crm`) subscribes at composition time (`bot.extensions.init_app`), so
the ledgers need not import it.
`publish()` calls every subscriber synchronously, inside the publisher's transaction:
what a subscriber writes (the CRM's OutboundEvent) commits or rolls back with the change
it reports, the transactional outbox the CRM's guarantees rest on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.core.models import Customer, InboundMessage, Message, State


@dataclass(frozen=True, slots=True)
class MessageStateChanged:
    """A message moved: sent, suppressed or failed by the sender (with the reason code,
    and the provider's error code and text for a failure), delivered, read or failed by
    a receipt."""

    message: Message
    state: State
    reason: str | None = None
    error_code: str | None = None
    error_text: str | None = None


@dataclass(frozen=True, slots=True)
class MessagesStateChanged:
    """Several messages moved in one transaction (a send batch's outcomes): one event,
    so that a subscriber writes its rows in a few statements, not a few per message."""

    changes: tuple[MessageStateChanged, ...]


@dataclass(frozen=True, slots=True)
class ConsentChanged:
    """An opt-in or opt-out was written to the consent ledger."""

    customer: Customer
    category: str  # bot.policy.consent.ALL or MARKETING
    action: str  # "opt_in" or "opt_out"
    source: str


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A customer's message was stored."""

    inbound: InboundMessage


Event = MessageStateChanged | MessagesStateChanged | ConsentChanged | MessageReceived
Subscriber = Callable[[Event, datetime], None]

_subscribers: list[Subscriber] = []


def subscribe(subscriber: Subscriber) -> None:
    """Tell `subscriber` of every event from now on (once, however often it subscribes:
    every app a process builds subscribes the same function)."""
    if subscriber not in _subscribers:
        _subscribers.append(subscriber)


def publish(event: Event, now: datetime) -> None:
    """Tell every subscriber, in the caller's transaction; a subscriber's error is the
    caller's (the change and its event stand or fall together)."""
    for subscriber in tuple(_subscribers):
        subscriber(event, now)
