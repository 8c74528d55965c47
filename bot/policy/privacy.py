"""Customers' data rights: export everything held about a number or a BSUID, erase it for
good while remembering (as a salted hash only) never to message it again, and redact old
texts."""

from __future__ import annotations

import operator
import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import reduce

from peewee import Model, Value
from playhouse.shortcuts import model_to_dict

from bot.core.audit import audit
from bot.core.models import (
    ConsentEvent,
    Customer,
    InboundMessage,
    Message,
    MessagePricing,
    Order,
    OrderEvent,
    OutboundEvent,
    Reason,
    State,
    StatusEvent,
    Suppression,
    UnhandledUpdate,
    WebhookDelivery,
    write_transaction,
)
from bot.core.phones import is_bsuid
from bot.core.suppression import is_suppressed, suppressed_among, suppression_hash
from bot.policy.identities import keys_of

__all__ = [
    "erase_customer",
    "export_customer",
    "is_suppressed",
    "redact_old_messages",
    "suppressed_among",
    "suppression_hash",
]

#: Rows redacted per transaction, so a first run over a large backlog never holds a long lock.
REDACT_BATCH = 500
#: Messages still on their way keep their text and parameters: the sender needs them.
IN_FLIGHT = (State.QUEUED, State.SENDING, State.DEFERRED)
#: What an erasure deletes, children before parents.
DELETION_ORDER = (
    ("crm_events", OutboundEvent),  # with their webhook deliveries
    ("unhandled_updates", UnhandledUpdate),
    ("status_events", StatusEvent),
    ("inbound_messages", InboundMessage),
    ("messages", Message),
    ("consent_events", ConsentEvent),
    ("order_events", OrderEvent),
    ("orders", Order),
    ("customers", Customer),
)


def export_customer(key: str) -> dict | None:
    """Everything held about the owner of `key` (an E.164 number or a BSUID) as plain
    JSON values; None if nothing is."""
    held = _held_rows(key)
    if not any(held.values()):
        return None
    customers = held.pop("customers")
    return {
        "user_id" if is_bsuid(key) else "phone": key,
        "customer": _plain(customers[0]) if customers else None,
        **{name: [_plain(row) for row in rows] for name, rows in held.items()},
    }


def erase_customer(key: str, salt: str, actor: str, now: datetime) -> dict:
    """Delete everything held about the owner of `key` (an E.164 number or a BSUID) and
    suppress it for good, with the other key their customer row had (a number and a
    BSUID are one person's).

    Erasure means "forget me and never message me again": the suppression hash is
    written even when nothing else is held, so the number stays blocked when a shop
    later sends a new order for it. Orders are deleted only when no other customer's
    message refers to them; their order events are kept as bare dedupe keys (payload
    blanked, order unlinked), so that a redelivered old event is still a duplicate and
    never recreates the customer. One transaction; idempotent.
    """
    subject = suppression_hash(key, salt)
    with write_transaction():
        held = _held_rows(key)
        counts = {name: len(rows) for name, rows in held.items()}
        keys = {key, *(k for customer in held["customers"] for k in keys_of(customer))}
        for name, model in DELETION_ORDER:
            ids = [row.id for row in held[name]]
            if ids and model is OutboundEvent:
                # What the CRM was told, or still would be: the attempts go with it.
                WebhookDelivery.delete().where(WebhookDelivery.event.in_(ids)).execute()
                model.delete().where(model.id.in_(ids)).execute()
            elif ids and model is OrderEvent:
                # The dedupe key outlives the person: a redelivered old event stays a
                # duplicate. What it said (the payload) and which order it was go.
                model.update(payload={}, order=None).where(model.id.in_(ids)).execute()
            elif ids:
                model.delete().where(model.id.in_(ids)).execute()
        forget_priced_ids(held["messages"], salt)
        for suppressed in sorted(keys):
            Suppression.insert(
                phone_hash=suppression_hash(suppressed, salt), reason=Reason.ERASED, created_at=now
            ).on_conflict_ignore().execute()
        audit(actor, "erase", subject, counts, now)
    return {"subject": subject, "erased": counts}


def forget_priced_ids(messages: list[Message], salt: str) -> None:
    """What the erased messages were billed as stays (spend is the shop's, and a country
    and a category name no one), but not by their provider ids: Meta's wamid carries the
    recipient's number. Each becomes a salted hash, so a late receipt cannot tie it back."""
    for message in messages:
        if message.provider_message_id:
            hashed = "erased:" + suppression_hash(message.provider_message_id, salt)
            MessagePricing.update(provider_message_id=hashed[:128]).where(
                MessagePricing.provider_message_id == message.provider_message_id
            ).execute()


def redact_old_messages(now: datetime, retention_days: int) -> int:
    """Blank the texts and payloads of rows older than `retention_days`; how many changed.

    Rows, states, reason codes and timestamps stay, so counts and delivery statistics
    survive. Idempotent (already blank rows are skipped) and done in batches.
    """
    if retention_days <= 0:
        return 0
    cutoff = now - timedelta(days=retention_days)
    redactions = (
        (
            Message,
            (Message.created_at < cutoff)
            & Message.state.not_in(IN_FLIGHT)
            & (
                Message.text.is_null(False)
                | Message.params.is_null(False)
                | Message.error_text.is_null(False)
            ),
            {Message.text: None, Message.params: None, Message.error_text: None},
        ),
        (
            InboundMessage,
            (InboundMessage.received_at < cutoff)
            & (InboundMessage.handled == True)  # noqa: E712  (unanswered ones still need it)
            & (InboundMessage.text.is_null(False) | InboundMessage.payload.is_null(False)),
            {InboundMessage.text: None, InboundMessage.payload: None},
        ),
        (
            OrderEvent,
            (OrderEvent.received_at < cutoff) & (OrderEvent.payload != {}),
            {OrderEvent.payload: {}},
        ),
        (
            StatusEvent,
            (StatusEvent.received_at < cutoff) & StatusEvent.payload.is_null(False),
            {StatusEvent.payload: None},
        ),
        (
            UnhandledUpdate,
            (UnhandledUpdate.received_at < cutoff)
            & (UnhandledUpdate.payload.is_null(False) | UnhandledUpdate.phone.is_null(False)),
            {UnhandledUpdate.payload: None, UnhandledUpdate.phone: None},
        ),
    )
    return sum(_redact(model, where, blank) for model, where, blank in redactions)


def _redact(model: type[Model], where, blank: dict) -> int:
    total = 0
    while True:
        with write_transaction():
            ids = [row.id for row in model.select(model.id).where(where).limit(REDACT_BATCH)]
            if not ids:
                return total
            total += model.update(blank).where(model.id.in_(ids)).execute()


def _held_rows(key: str) -> dict[str, list[Model]]:
    """Every row that belongs to the owner of `key` (a number or a BSUID) alone, by
    kind: found by the key, and by the other key their customer row has."""
    by = Customer.user_id if is_bsuid(key) else Customer.phone
    customer = Customer.get_or_none(by == key)
    keys = sorted({key, *(keys_of(customer) if customer is not None else [])})
    numbers = [k for k in keys if not is_bsuid(k)]
    bsuids = [k for k in keys if is_bsuid(k)]
    mine = Message.phone.in_(numbers) | Message.user_id.in_(bsuids)
    if customer is not None:
        mine |= Message.customer == customer
    messages = list(Message.select().where(mine).order_by(Message.id))
    message_ids = [m.id for m in messages]
    provider_ids = [m.provider_message_id for m in messages if m.provider_message_id]

    receipts = StatusEvent.message.in_(message_ids)
    receipts |= StatusEvent.callback_data.in_([m.callback_data for m in messages])
    if provider_ids:
        receipts |= StatusEvent.provider_message_id.in_(provider_ids)
    status_events = list(StatusEvent.select().where(receipts).order_by(StatusEvent.id))

    inbound = InboundMessage.phone.in_(numbers) | InboundMessage.user_id.in_(bsuids)
    consent_events: list[Model] = []
    order_ids = {m.order_id for m in messages if m.order_id}
    if customer is not None:
        inbound |= InboundMessage.customer == customer
        consent_events = list(customer.consent_events.order_by(ConsentEvent.id))
        order_ids |= {o.id for o in Order.select(Order.id).where(Order.customer == customer)}
    inbound_messages = list(InboundMessage.select().where(inbound).order_by(InboundMessage.id))
    unhandled_updates = _unhandled_rows(numbers, bsuids)
    crm_events = _rows_naming(OutboundEvent, OutboundEvent.payload, keys)

    # Orders and events are theirs only if nobody else is their customer or recipient.
    others = Message.id.not_in(message_ids)
    shared_orders = {
        m.order_id
        for m in Message.select(Message.order).where(Message.order.in_(order_ids) & others)
    }
    orders = list(
        Order.select()
        .where(
            Order.id.in_(order_ids - shared_orders)
            & (Order.customer.is_null() | (Order.customer == getattr(customer, "id", None)))
        )
        .order_by(Order.id)
    )
    own_order_ids = [o.id for o in orders]
    event_ids = {m.order_event_id for m in messages if m.order_event_id}
    event_ids |= {
        e.id for e in OrderEvent.select(OrderEvent.id).where(OrderEvent.order.in_(own_order_ids))
    }
    shared_events = {
        m.order_event_id
        for m in Message.select(Message.order_event).where(
            Message.order_event.in_(event_ids) & others
        )
    }
    order_events = list(
        OrderEvent.select()
        .where(
            OrderEvent.id.in_(event_ids - shared_events)
            & (OrderEvent.order.is_null() | OrderEvent.order.in_(own_order_ids))
        )
        .order_by(OrderEvent.id)
    )
    return {
        "customers": [customer] if customer is not None else [],
        "consent_events": consent_events,
        "orders": orders,
        "order_events": order_events,
        "messages": messages,
        "status_events": status_events,
        "inbound_messages": inbound_messages,
        "unhandled_updates": unhandled_updates,
        "crm_events": crm_events,
    }


def _unhandled_rows(numbers: list[str], bsuids: list[str]) -> list[Model]:
    """Unhandled updates about these numbers and BSUIDs: those that name a number as
    their customer, and those whose raw payload holds a number's digits or a BSUID
    anywhere (a shared contact card, a payload Dakiya could not read at all)."""
    about = UnhandledUpdate.phone.in_(numbers) | _naming(UnhandledUpdate.payload, numbers + bsuids)
    return list(UnhandledUpdate.select().where(about).order_by(UnhandledUpdate.id))


def _rows_naming(model: type[Model], payload, keys: list[str]) -> list[Model]:
    """Rows whose JSON `payload` holds a number's digits or a BSUID (the CRM's events
    name the customer in their payload), matched as text like `_unhandled_rows`."""
    return list(model.select().where(_naming(payload, keys)).order_by(model.id))


def _naming(payload, keys: list[str]):
    """JSON stored as text holding any of `keys`: a number by its digits (8 or more,
    shorter strings would match unrelated numbers), a BSUID whole. Digits, letters and
    dots only, so LIKE has no wildcard to escape."""
    patterns = [k if is_bsuid(k) else re.sub(r"\D", "", k) for k in keys]
    matches = [
        # Bypassing the field's JSON conversion: the pattern is matched as text.
        payload ** Value(f"%{pattern}%", converter=False)
        for pattern in patterns
        if is_bsuid(pattern) or len(pattern) >= 8
    ]
    return reduce(operator.or_, matches) if matches else Value(False)


def _plain(row: Model) -> dict:
    return {key: _json_value(value) for key, value in model_to_dict(row, recurse=False).items()}


def _json_value(value):
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def iso(value: datetime | None) -> str | None:
    """Naive UTC as ISO 8601 with a Z, as the admin API shows every time."""
    return value.isoformat() + "Z" if value else None
