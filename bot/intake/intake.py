"""Taking deliveries in: what a webhook (or the spool drainer) does with a verified,
parsed delivery. Store in one transaction, then enqueue the follow-up work.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple, Protocol, TypeVar

import redis
from peewee import IntegrityError
from rq import Queue
from werkzeug.datastructures import Headers

from bot.core import spool, telemetry
from bot.core.config import Settings
from bot.core.errors import is_outage, without_unstorable
from bot.core.events import MessageReceived, publish
from bot.core.models import InboundMessage, Reason, db, fit, write_transaction
from bot.core.notifications import NotificationMap
from bot.core.rows import Erased
from bot.core.suppression import suppressed_among
from bot.delivery import dispatch, pricing, receipts, statuses, unhandled
from bot.delivery.providers.base import (
    AccountNews,
    IdentityChange,
    PreferenceUpdate,
    Provider,
    StatusUpdate,
    TemplateCategoryNotice,
    UnhandledItem,
    WebhookUpdate,
)
from bot.delivery.providers.base import InboundMessage as Inbound
from bot.intake import dead_letters, outbox, template_categories
from bot.intake.outbox import Accepted
from bot.intake.senders import (
    Merges,
    link_recipients,
    record_identity_change,
    record_preference,
    touch_customer,
)
from bot.intake.sources.base import OrderEvent, Source
from bot.observability import alerts

log = logging.getLogger(__name__)

HANDLE_JOB = "jobs.inbound.handle_inbound_messages"


class IntakeServices(Protocol):
    """What intake needs of the process's services (`bot.extensions.Services`, which the
    web handlers, jobs and the sweeper pass in): described here, so that intake does not
    import the composition above it."""

    settings: Settings
    redis: redis.Redis
    queues: dict[str, Queue]

    def current_notifications(self) -> NotificationMap: ...

    def refresh(self) -> None: ...

    def source(self, name: str) -> Source | None: ...

    def webhook_provider(self, name: str) -> Provider: ...


T = TypeVar("T")
SPOOLED = object()  # what `take_durably` returns when the delivery waits in the spool


def take_durably(
    svc: IntakeServices, spool_kind: str | None, body: bytes, headers: dict, take: Callable[[], T]
) -> T | object:
    """Run `take`; for a sender that never redelivers (`spool_kind` set), spool the raw
    delivery first so that no failure loses it.

    Returns `take`'s result, or `SPOOLED` when it failed and the spool holds the
    delivery: an outage waits there for the database; any other failure is moved to the
    dead letters by the next drain (bot.intake.dead_letters). Without a spool entry the error
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


def take_order_event(svc: IntakeServices, event: OrderEvent, now: datetime) -> Accepted:
    """Store the event and its message, then enqueue the send after commit."""
    accepted = outbox.accept_order_event(
        event, settings=svc.settings, notifications=svc.current_notifications(), now=now
    )
    dispatch.enqueue_sends(svc.queues, accepted.queued)
    if accepted.dropped:
        count_dropped(svc, "order_event", accepted.dropped, event.source)
    return accepted


def count_dropped(svc: IntakeServices, what: str, reason: str, source: str, n: int = 1) -> None:
    """A delivery acknowledged but not stored: logged and counted by reason, never with
    the number (`dakiya_intake_dropped_total` in /metrics)."""
    log.info("%d %s from %s dropped: %s", n, what, source, reason)
    telemetry.count(
        svc.redis, "intake_dropped", {"what": what, "reason": reason, "source": source}, n
    )


class Stored(NamedTuple):
    """What storing a delivery's updates wrote, and what is left to do after commit."""

    receipt_ids: list[int]  # new receipts, to apply
    inbound_ids: list[int]  # new customer messages, to answer
    count: int  # how many rows were new
    dropped: Counter[str]  # updates not stored, by what they were (an erased number)
    merges: Merges
    account: list[AccountNews]  # for the next alert check
    categories_changed: bool


def take_whatsapp_updates(svc: IntakeServices, updates: list[WebhookUpdate], now: datetime) -> int:
    """Store receipts, customer messages and the parts Dakiya could not read (raw, with
    the reason), then enqueue applying and answering them. How many rows were new."""
    stored = store_whatsapp_updates(svc, updates, now)
    follow_up(svc, stored, now)
    try:
        if stored.receipt_ids:
            receipts.hand_over(svc.queues, stored.receipt_ids)
        if stored.inbound_ids:
            # Replies travel on the order queue: a customer never waits behind receipts.
            svc.queues["orders"].enqueue(HANDLE_JOB, stored.inbound_ids, result_ttl=0)
    except redis.RedisError as exc:
        log.warning("enqueue after intake failed (%s); the sweeper picks it up", exc)
    return stored.count


def store_whatsapp_updates(
    svc: IntakeServices, updates: list[WebhookUpdate], now: datetime
) -> Stored:
    """Store one or many deliveries' updates in one transaction (a savepoint inside the
    caller's): receipts with one INSERT, customer messages once each, identity and
    preference changes, template notices, and the raw parts Dakiya could not read."""
    status_updates = [u for u in updates if isinstance(u, StatusUpdate)]
    inbound = [u for u in updates if isinstance(u, Inbound)]
    preferences = [u for u in updates if isinstance(u, PreferenceUpdate)]
    changes = [u for u in updates if isinstance(u, IdentityChange)]
    account = [u for u in updates if isinstance(u, AccountNews)]
    category_notices = [u for u in updates if isinstance(u, TemplateCategoryNotice)]
    kept_raw = [u for u in updates if isinstance(u, UnhandledItem)]
    salt = svc.settings.suppression_salt
    dropped: Counter[str] = Counter()
    named = [u.phone for u in kept_raw if u.phone]
    if named and (erased := suppressed_among(named, salt)):
        # A raw part naming an erased number is not kept either.
        dropped["unhandled"] = sum(1 for u in kept_raw if u.phone in erased)
        kept_raw = [u for u in kept_raw if u.phone not in erased]
    merges = Merges()
    with write_transaction():
        event_ids = statuses.record_updates(status_updates, now)
        pricing.record_pricing(status_updates, now)
        # Identity changes first: a message in the same delivery finds its new key.
        rekeyed = sum(
            record_identity_change(change, now, salt=salt, merges=merges) for change in changes
        )
        link_recipients(status_updates, now, salt=salt, merges=merges)
        inbound_ids = store_inbound(inbound, now, salt=salt, dropped=dropped, merges=merges)
        for preference in preferences:
            if not record_preference(preference, now, salt=salt, merges=merges):
                dropped["preference"] += 1
        new_unhandled = unhandled.record(kept_raw, now)
        if category_notices:
            notifications = svc.current_notifications()
            account += template_categories.take_notices(category_notices, notifications, now)
    stored = len(event_ids) + len(inbound_ids) + len(preferences) + len(account)
    count = stored + rekeyed + new_unhandled
    return Stored(event_ids, inbound_ids, count, dropped, merges, account, bool(category_notices))


def follow_up(svc: IntakeServices, stored: Stored, now: datetime) -> None:
    """After commit: count what was dropped, forget merged customers' counters, keep
    account news for the alert check, and send by re-categorised templates at once."""
    for what, n in stored.dropped.items():
        count_dropped(svc, what, Reason.ERASED, "whatsapp", n)
    try:
        stored.merges.forget_counters(svc.redis)
        alerts.record_account_news(svc.redis, stored.account, now)
    except redis.RedisError as exc:
        log.warning("follow-up after intake failed (%s)", exc)
    if stored.categories_changed:
        svc.refresh()  # this process sends by the new categories at once


def store_inbound(
    messages: list[Inbound],
    now: datetime,
    *,
    salt: str,
    dropped: Counter[str] | None = None,
    merges: Merges | None = None,
) -> list[int]:
    """Keep every customer message once (providers redeliver), create or update the
    customer, and open their 24-hour service window. The ids of the new rows.

    A message from an erased number is dropped, not stored (counted in `dropped`): no
    customer, no text, no CRM event. Even STOP or START: the number is suppressed for
    good already, and START does not lift an erasure."""
    stored = []
    merges = Merges() if merges is None else merges
    for message in messages:
        if (
            InboundMessage.select()
            .where(InboundMessage.provider_message_id == message.provider_message_id)
            .exists()
        ):
            continue
        try:
            with db.atomic():
                customer = touch_customer(message, now, salt, merges)
                row = InboundMessage.create(
                    provider=message.provider,
                    provider_message_id=message.provider_message_id,
                    phone=message.from_phone,
                    user_id=message.from_user_id,
                    customer=customer,
                    type=fit(InboundMessage.type, message.type),
                    text=message.text,
                    # Not one of our buttons' payloads if it is this long: kept, cut.
                    button_payload=fit(InboundMessage.button_payload, message.button_payload),
                    payload=message.raw,
                    occurred_at=message.occurred_at,
                    received_at=now,
                )
                publish(MessageReceived(row), now)
        except IntegrityError:
            continue
        except Erased:
            if dropped is not None:
                dropped["inbound"] += 1
            continue
        stored.append(row.id)
    return stored


class UnknownSpoolKind(LookupError):
    """A spooled delivery for a source or provider no longer enabled."""


def take_spooled(svc: IntakeServices, entry: spool.Entry, now: datetime) -> None:
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
        take_whatsapp_updates(svc, parse_whatsapp(svc, name, entry.body), now)
    else:
        raise UnknownSpoolKind(f"unknown spool entry kind {entry.kind!r}")


def parse_whatsapp(svc: IntakeServices, provider_name: str, body: bytes) -> list[WebhookUpdate]:
    """A verified WhatsApp delivery's updates (never raises for its content: what cannot
    be read comes back as `UnhandledItem`s)."""
    provider = svc.webhook_provider(provider_name)
    return provider.parse_webhook(without_unstorable(json.loads(body)))


class Drained(NamedTuple):
    stored: int  # processed as their webhook would have
    dead_lettered: int  # failed for a reason other than an outage: kept aside


def drain_spool(svc: IntakeServices, now: datetime) -> Drained:
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
