"""Outbound CRM webhooks: what changed for a shop's customers, POSTed to its own system.

A subscriber to the domain events (`bot.core.events`, subscribed by `bot.extensions`): an
OutboundEvent is written in the same transaction as the change it reports; each
configured URL gets a WebhookDelivery row, sent by `jobs.crm.deliver`, signed with the
one HMAC helper and retried with the one backoff (bot/delivery/backoff.py). Every attempt is its
own row.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
import requests
from rq import Queue

from bot.core.config import Settings
from bot.core.events import (
    ConsentChanged,
    Event,
    MessageReceived,
    MessagesStateChanged,
    MessageStateChanged,
)
from bot.core.models import (
    Customer,
    InboundMessage,
    Order,
    OutboundEvent,
    WebhookDelivery,
    db,
)
from bot.core.signing import sign_hmac
from bot.delivery.backoff import backoff_seconds

log = logging.getLogger(__name__)

MESSAGE_STATUS = "message.status"
CONSENT_CHANGED = "consent.changed"
MESSAGE_RECEIVED = "message.received"

DELIVER_JOB = "jobs.crm.deliver"
QUEUE = "statuses"
MAX_ATTEMPTS = 8
SIGNATURE_HEADER = "X-Dakiya-Signature"
EVENT_ID_HEADER = "X-Dakiya-Event-Id"
ATTEMPT_HEADER = "X-Dakiya-Delivery-Attempt"

PENDING, SENDING, DELIVERED, RETRIED, FAILED = (
    "pending",
    "sending",
    "delivered",
    "retried",
    "failed",
)


def on_event(
    settings: Settings, queues: dict[str, Queue], event: Event, now: datetime
) -> OutboundEvent | None:
    """The subscriber: record what the shop's CRM hears about `event` (in the publisher's
    transaction). Nothing is built or written when no CRM URL is configured."""
    if not settings.crm_webhook_urls:
        return None
    if isinstance(event, MessagesStateChanged):
        payloads = message_status_payloads(event.changes, now)
        record_events(settings, queues, [(MESSAGE_STATUS, p) for p in payloads], now)
        return None
    type_, payload = describe(event, now)
    return record_event(settings, queues, type_, payload, now)


def describe(event: Event, now: datetime) -> tuple[str, dict]:
    """The CRM event type and payload that report a domain event."""
    match event:
        case MessageStateChanged():
            return MESSAGE_STATUS, message_status_payloads([event], now)[0]
        case ConsentChanged(customer, category, action, source):
            return CONSENT_CHANGED, consent_payload(customer, category, action, source, now)
        case MessageReceived(row):
            return MESSAGE_RECEIVED, inbound_payload(row)
    raise TypeError(f"not a domain event: {event!r}")


def record_event(
    settings: Settings, queues: dict[str, Queue], type_: str, payload: dict, now: datetime
) -> OutboundEvent:
    """Write the event and one delivery per configured URL (call inside the caller's
    transaction), then enqueue the deliveries; a lost enqueue is the sweeper's to redo."""
    event = OutboundEvent.create(type=type_, payload=payload, created_at=now)
    ids = [
        WebhookDelivery.create(event=event, url=url, next_attempt_at=now, created_at=now).id
        for url in settings.crm_webhook_urls
    ]
    # A job that runs before the commit finds no row and does nothing; the sweeper
    # re-enqueues the delivery after its grace period.
    enqueue(queues, ids)
    return event


def record_events(
    settings: Settings, queues: dict[str, Queue], events: list[tuple[str, dict]], now: datetime
) -> list[int]:
    """`record_event` for a batch (a send batch's outcomes): two INSERTs however many
    events, then the enqueues. The events' ids, in order."""
    if not events:
        return []
    rows = [{"type": t, "payload": p, "created_at": now} for t, p in events]
    cursor = OutboundEvent.insert_many(rows).returning(OutboundEvent.id).execute()
    event_ids = sorted(row[0] if isinstance(row, tuple) else row.id for row in cursor)
    deliveries = [
        {"event": event_id, "url": url, "next_attempt_at": now, "created_at": now}
        for event_id in event_ids
        for url in settings.crm_webhook_urls
    ]
    cursor = WebhookDelivery.insert_many(deliveries).returning(WebhookDelivery.id).execute()
    enqueue(queues, sorted(row[0] if isinstance(row, tuple) else row.id for row in cursor))
    return event_ids


def enqueue(queues: dict[str, Queue], delivery_ids: list[int], at: datetime | None = None) -> None:
    queue = queues[QUEUE]
    try:
        for delivery_id in delivery_ids:
            if at is None:
                queue.enqueue(DELIVER_JOB, delivery_id, result_ttl=0)
            else:
                queue.enqueue_at(at, DELIVER_JOB, delivery_id, result_ttl=0)
    except redis.RedisError as exc:
        log.warning("CRM delivery enqueue failed (%s); the sweeper picks it up", exc)


def message_status_payloads(changes: Sequence[MessageStateChanged], now: datetime) -> list[dict]:
    """The `message.status` payloads of `changes`, their orders read in one query."""
    order_ids = {c.message.order_id for c in changes if c.message.order_id}
    orders = {o.id: o for o in Order.select().where(Order.id.in_(order_ids))} if order_ids else {}
    return [_status_payload(change, orders.get(change.message.order_id), now) for change in changes]


def _status_payload(change: MessageStateChanged, order: Order | None, now: datetime) -> dict:
    message = change.message
    failed = change.error_code is not None or change.error_text is not None
    return {
        "message_id": message.id,
        "phone": message.phone,
        "kind": message.kind,
        "template": message.template_name,
        "state": str(change.state),
        "reason": str(change.reason) if change.reason else None,
        "error": {"code": change.error_code, "text": change.error_text} if failed else None,
        "order": {"source": order.source, "id": order.external_id, "number": order.number}
        if order
        else None,
        "at": now.isoformat() + "Z",
    }


def consent_payload(
    customer: Customer, category: str, action: str, source: str, now: datetime
) -> dict:
    return {
        "phone": customer.phone,
        "category": category,
        "action": action,
        "source": source,
        "at": now.isoformat() + "Z",
    }


def inbound_payload(row: InboundMessage) -> dict:
    return {
        "inbound_id": row.id,
        "phone": row.phone,
        "type": row.type,
        "text": row.text,
        "button_payload": row.button_payload,
        "at": row.occurred_at.isoformat() + "Z",
    }


def body_of(event: OutboundEvent) -> bytes:
    """The exact bytes every attempt sends (and signs)."""
    document = {
        "id": event.id,
        "type": event.type,
        "created_at": event.created_at.isoformat() + "Z",
        "data": event.payload,
    }
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def is_retryable(status_code: int | None) -> bool:
    """Timeouts and connection errors (no status), 5xx and 429 are retried; other
    answers are final."""
    return status_code is None or status_code >= 500 or status_code == 429


@dataclass(frozen=True)
class Answer:
    status_code: int | None
    error: str | None


def post(url: str, body: bytes, headers: dict, timeout: float) -> Answer:
    try:
        response = requests.post(url, data=body, headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        return Answer(None, f"{type(exc).__name__}: {exc}"[:500])
    ok = 200 <= response.status_code < 300
    return Answer(response.status_code, None if ok else response.text[:500] or None)


def deliver_once(
    settings: Settings, queues: dict[str, Queue], delivery_id: int, now: datetime
) -> str:
    """Make one attempt; log it on its row; schedule the next attempt as a new row."""
    claimed = (
        WebhookDelivery.update(state=SENDING, attempted_at=now)
        .where((WebhookDelivery.id == delivery_id) & (WebhookDelivery.state == PENDING))
        .execute()
    )
    if not claimed:
        return "skipped"
    delivery = WebhookDelivery.get_by_id(delivery_id)
    body = body_of(delivery.event)
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: "sha256=" + sign_hmac(settings.crm_webhook_secret, body),
        EVENT_ID_HEADER: str(delivery.event_id),
        ATTEMPT_HEADER: str(delivery.attempt),
    }
    answer = post(delivery.url, body, headers, settings.crm_webhook_timeout_seconds)
    fields: dict = {"status_code": answer.status_code, "error": answer.error}
    retry_id = None
    if answer.status_code is not None and 200 <= answer.status_code < 300:
        fields.update(state=DELIVERED, delivered_at=now)
    elif is_retryable(answer.status_code) and delivery.attempt < MAX_ATTEMPTS:
        delay = backoff_seconds(
            delivery.attempt,
            settings.retry_base_seconds,
            settings.retry_max_seconds,
            random.random(),
        )
        at = now + timedelta(seconds=delay)
        fields.update(state=RETRIED)
        with db.atomic():
            retry_id = WebhookDelivery.create(
                event=delivery.event_id,
                url=delivery.url,
                attempt=delivery.attempt + 1,
                next_attempt_at=at,
                created_at=now,
            ).id
            WebhookDelivery.update(**fields).where(WebhookDelivery.id == delivery_id).execute()
        enqueue(queues, [retry_id], at)
        return RETRIED
    else:
        fields.update(state=FAILED)
        log.warning(
            "CRM webhook %s gave up on event %s after attempt %s (%s)",
            delivery.url,
            delivery.event_id,
            delivery.attempt,
            answer.status_code or answer.error,
        )
    WebhookDelivery.update(**fields).where(WebhookDelivery.id == delivery_id).execute()
    return fields["state"]


def stranded_delivery_ids(older_than: datetime, limit: int = 5000) -> list[int]:
    """Deliveries due for longer than the grace period but never attempted (their job
    was lost, or ran before the event's transaction committed), for the sweeper."""
    query = (
        WebhookDelivery.select(WebhookDelivery.id)
        .where((WebhookDelivery.state == PENDING) & (WebhookDelivery.next_attempt_at < older_than))
        .order_by(WebhookDelivery.id)
        .limit(limit)
    )
    return [d.id for d in query]
