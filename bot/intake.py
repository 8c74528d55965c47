"""Taking deliveries in: what a webhook (or the spool drainer) does with a verified,
parsed delivery. Store in one transaction, then enqueue the follow-up work.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple, TypeVar

import redis
from peewee import IntegrityError
from werkzeug.datastructures import Headers

from bot import (
    alerts,
    consent,
    crm,
    dead_letters,
    outbox,
    spool,
    statuses,
    triggers,
    unhandled,
)
from bot.errors import is_outage, without_unstorable
from bot.extensions import Services
from bot.models import Customer, InboundMessage, db, fit, write_transaction
from bot.outbox import Accepted
from bot.providers.base import (
    AccountUpdate,
    PreferenceUpdate,
    StatusUpdate,
    UnhandledItem,
    WebhookUpdate,
)
from bot.providers.base import InboundMessage as Inbound
from bot.rows import get_or_create_customer
from bot.sources.base import OrderEvent

log = logging.getLogger(__name__)

APPLY_JOB = "jobs.statuses.apply_status_events"
DRAIN_RECEIPTS_JOB = "jobs.statuses.apply_pending_receipts"
#: Stored receipt ids waiting for the batch applier, and its deduplicated trigger.
RECEIPTS_KEY = "dakiya:receipts:pending"
RECEIPTS_KICK_KEY = "dakiya:receipts:kick"
HANDLE_JOB = "jobs.inbound.handle_inbound_messages"

T = TypeVar("T")
SPOOLED = object()  # what `take_durably` returns when the delivery waits in the spool


def take_durably(
    svc: Services, spool_kind: str | None, body: bytes, headers: dict, take: Callable[[], T]
) -> T | object:
    """Run `take`; for a sender that never redelivers (`spool_kind` set), spool the raw
    delivery first so that no failure loses it.

    Returns `take`'s result, or `SPOOLED` when it failed and the spool holds the
    delivery: an outage waits there for the database; any other failure is moved to the
    dead letters by the next drain (bot.dead_letters). Without a spool entry the error
    propagates (503 for an outage, so the sender redelivers; 500 otherwise).
    """
    entry = spool.put(svc.redis, spool_kind, body, headers) if spool_kind else None
    try:
        result = take()
    except Exception as exc:
        if entry is None:
            raise
        if not is_outage(exc):
            log.exception("a %s delivery failed; spooled for the dead letters", spool_kind)
        return SPOOLED
    spool.remove(svc.redis, entry)
    return result


def take_order_event(svc: Services, event: OrderEvent, now: datetime) -> Accepted:
    """Store the event and its message, then enqueue the send after commit."""
    accepted = outbox.accept_order_event(
        event, settings=svc.settings, notifications=svc.current_notifications(), now=now
    )
    outbox.enqueue_sends(svc.queues, accepted.queued)
    return accepted


def take_whatsapp_updates(svc: Services, updates: list[WebhookUpdate], now: datetime) -> int:
    """Store receipts, customer messages and the parts Dakiya could not read (raw, with
    the reason), then enqueue applying and answering them. How many rows were new."""
    receipts = [u for u in updates if isinstance(u, StatusUpdate)]
    inbound = [u for u in updates if isinstance(u, Inbound)]
    preferences = [u for u in updates if isinstance(u, PreferenceUpdate)]
    account = [u for u in updates if isinstance(u, AccountUpdate)]
    kept_raw = [u for u in updates if isinstance(u, UnhandledItem)]
    with write_transaction():
        event_ids = statuses.record_updates(receipts, now)
        inbound_ids = store_inbound(inbound, now)
        for preference in preferences:
            record_preference(preference, now)
        new_unhandled = unhandled.record(kept_raw, now)
    try:
        if event_ids:
            hand_over_receipts(svc, event_ids)
        if inbound_ids:
            # Replies travel on the order queue: a customer never waits behind receipts.
            svc.queues["orders"].enqueue(HANDLE_JOB, inbound_ids, result_ttl=0)
        alerts.record_account_updates(svc.redis, account, now)  # the next check alerts
    except redis.RedisError as exc:
        log.warning("enqueue after intake failed (%s); the sweeper picks it up", exc)
    return len(event_ids) + len(inbound_ids) + len(preferences) + len(account) + new_unhandled


def hand_over_receipts(svc: Services, event_ids: list[int]) -> None:
    """Queue stored receipts for the batch applier: their ids on a Redis list, and at
    most one pending drain job however many webhooks arrive (one round trip when a job
    is already pending). Ids lost with Redis stay unapplied rows: the sweeper's."""
    triggers.ensure_pending(
        svc.queues["statuses"],
        RECEIPTS_KICK_KEY,
        DRAIN_RECEIPTS_JOB,
        also=lambda pipe: pipe.rpush(RECEIPTS_KEY, *event_ids),
    )


def kick_receipts(svc: Services, *, force: bool = False) -> None:
    """Make sure a drain job is pending (`force`: enqueue one even if a trigger is set)."""
    triggers.ensure_pending(
        svc.queues["statuses"], RECEIPTS_KICK_KEY, DRAIN_RECEIPTS_JOB, force=force
    )


def store_inbound(messages: list[Inbound], now: datetime) -> list[int]:
    """Keep every customer message once (providers redeliver), create or update the
    customer, and open their 24-hour service window. The ids of the new rows."""
    stored = []
    for message in messages:
        if (
            InboundMessage.select()
            .where(InboundMessage.provider_message_id == message.provider_message_id)
            .exists()
        ):
            continue
        try:
            with db.atomic():
                customer = touch_customer(message, now)
                row = InboundMessage.create(
                    provider=message.provider,
                    provider_message_id=message.provider_message_id,
                    phone=message.from_phone,
                    customer=customer,
                    type=fit(InboundMessage.type, message.type),
                    text=message.text,
                    # Not one of our buttons' payloads if it is this long: kept, cut.
                    button_payload=fit(InboundMessage.button_payload, message.button_payload),
                    payload=message.raw,
                    occurred_at=message.occurred_at,
                    received_at=now,
                )
                crm.record_event(crm.MESSAGE_RECEIVED, crm.inbound_payload(row), now)
        except IntegrityError:
            continue
        stored.append(row.id)
    return stored


def record_preference(update: PreferenceUpdate, now: datetime) -> None:
    """A marketing stop/resume the customer chose in WhatsApp itself: consent evidence."""
    customer, _ = get_or_create_customer(update.phone, now)
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


def touch_customer(message: Inbound, now: datetime) -> Customer:
    """The customer who wrote, created on first contact; their window opens now."""
    # A new customer is named as they named themselves (typed by them: cut to fit).
    customer, _ = get_or_create_customer(
        message.from_phone, now, name=fit(Customer.name, message.profile_name)
    )
    last = customer.last_inbound_at
    customer.last_inbound_at = max(last, message.occurred_at) if last else message.occurred_at
    customer.updated_at = now
    customer.save(only=[Customer.last_inbound_at, Customer.updated_at])
    return customer


class UnknownSpoolKind(LookupError):
    """A spooled delivery for a source or provider no longer enabled."""


def take_spooled(svc: Services, entry: spool.Entry, now: datetime) -> None:
    """Process one spooled delivery exactly as its webhook would have."""
    family, _, name = entry.kind.partition(":")
    headers = Headers(entry.headers)
    if family == "order":
        source = svc.source(name)
        if source is None:
            raise UnknownSpoolKind(f"no enabled order source named {name!r}")
        parsed = source.parse(entry.body, headers)
        if isinstance(parsed, OrderEvent):
            take_order_event(svc, parsed, now)
    elif family == "whatsapp":
        provider = svc.webhook_provider(name)
        updates = provider.parse_webhook(without_unstorable(json.loads(entry.body)))
        take_whatsapp_updates(svc, updates, now)
    else:
        raise UnknownSpoolKind(f"unknown spool entry kind {entry.kind!r}")


class Drained(NamedTuple):
    stored: int  # processed as their webhook would have
    dead_lettered: int  # failed for a reason other than an outage: kept aside


def drain_spool(svc: Services, now: datetime) -> Drained:
    """Process spooled deliveries oldest first, each on its own.

    One that fails for any reason but an outage is moved to the dead letters and the
    drain goes on; an outage stops it (re-raised), the rest wait for the next sweep.
    """
    stored = dead = 0
    for entry in spool.entries(svc.redis):
        try:
            take_spooled(svc, entry, now)
            stored += 1
        except Exception as exc:
            if is_outage(exc):
                raise
            log.error(
                "spool entry %s (%s) moved to the dead letters: %s",
                entry.id,
                entry.kind,
                dead_letters.describe(exc),
            )
            dead_letters.record(entry, exc, now)  # an outage here: the entry stays
            dead += 1
        spool.remove(svc.redis, entry.id)
    return Drained(stored, dead)
