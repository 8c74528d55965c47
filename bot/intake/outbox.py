"""The transactional outbox: an order event and its message rows commit together, and
only then are send jobs enqueued. The sweeper re-enqueues whatever Redis lost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from peewee import EXCLUDED, IntegrityError, Query, fn

from bot.campaigns import experiments
from bot.core import phones
from bot.core.config import Settings
from bot.core.events import MessageStateChanged, publish
from bot.core.languages import preferred_languages
from bot.core.models import (
    Customer,
    Message,
    Order,
    OrderEvent,
    Reason,
    State,
    utcnow,
    write_transaction,
)
from bot.core.notifications import (
    MissingParameter,
    NotificationMap,
    choose_language,
    customer_locale,
    order_values,
    render_params,
)
from bot.core.rows import Erased, get_or_create_customer, insert_message
from bot.core.statements import Statement, columns, row_values
from bot.intake import reminders
from bot.intake.sources.base import CustomerFacts
from bot.intake.sources.base import OrderEvent as IncomingEvent
from bot.policy import consent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Accepted:
    """What an order event produced. `created` is False for a redelivered event, and
    for one `dropped` (the reason code: `erased`, the number's owner was erased), which
    stores nothing at all and has no `event_id`."""

    created: bool
    event_id: int | None
    message_ids: list[int] = field(default_factory=list)
    queued: list[tuple[int, str]] = field(default_factory=list)  # (message id, queue)
    dropped: str | None = None

    def as_json(self) -> dict:
        answer = {
            "event_id": self.event_id,
            "message_ids": self.message_ids,
            "duplicate": not self.created and self.dropped is None,
        }
        if self.dropped is not None:
            answer["dropped"] = self.dropped
        return answer


def accept_order_event(
    event: IncomingEvent,
    *,
    settings: Settings,
    notifications: NotificationMap,
    now: datetime | None = None,
) -> Accepted:
    """Store `event` and the message it calls for in one transaction (idempotent).

    A redelivered event (same dedupe key) creates nothing and returns the ids created the
    first time. Two deliveries racing each other are settled by the unique keys: the
    loser's transaction rolls back and it reads the winner's rows.
    """
    now = now or utcnow()
    for attempt in range(3):
        try:
            with write_transaction():
                return _accept(event, settings, notifications, now)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _accept(
    event: IncomingEvent, settings: Settings, notifications: NotificationMap, now: datetime
) -> Accepted:
    # The hot path of every order webhook: few statements, narrow selects, upserts.
    # "" when the event has no second key: it matches no row (the column is NULL there),
    # and the statement's SQL stays the same for every event.
    keys = {"dedupe_key": event.dedupe_key, "event_key": event.event_key or ""}
    existing = EVENT_LOOKUP.execute(keys).fetchone()
    if existing is not None:
        event_id = existing[0]
        messages = Message.select(Message.id).where(Message.order_event == event_id)
        ids = [m.id for m in messages.order_by(Message.id)]
        return Accepted(created=False, event_id=event_id, message_ids=ids)

    region = event.customer.country or settings.default_region
    phone = usable_phone(event.customer, region)
    try:
        customer = upsert_customer(phone, event, now, settings.suppression_salt) if phone else None
    except Erased:
        # After erasure only the salted suppression is kept: no customer, order, event,
        # consent or CRM event for this number; acknowledged so that the shop does not
        # retry (nothing was written yet, so nothing is rolled back).
        return Accepted(created=False, event_id=None, dropped=Reason.ERASED)
    order = upsert_order(event, customer, now)
    if customer is None and order.customer_id is not None:
        customer = order.customer  # an unusable number: the order's known customer
    row = insert_event(event, order, now)
    message = plan_message(event, row, order, customer, settings, notifications, now)
    reminders.after_event(event, row, order, message, settings, now)
    if message is None:
        return Accepted(created=True, event_id=row.id)
    queued = [(message.id, message.queue)] if message.state == State.QUEUED else []
    return Accepted(created=True, event_id=row.id, message_ids=[message.id], queued=queued)


#: Order columns an event may fill in; later events never erase them (None keeps).
ORDER_FACTS = (
    "number",
    "total",
    "currency",
    "status",
    "status_url",
    "tracking_url",
    "tracking_number",
    "carrier",
    "stage",
    "customer",
)


def _order_upsert(values: dict) -> Query:
    kept = [getattr(Order, name) for name in ORDER_FACTS]
    update = {field: fn.COALESCE(getattr(EXCLUDED, field.column_name), field) for field in kept}
    update[Order.updated_at] = EXCLUDED.updated_at
    return (
        Order.insert(values)
        .on_conflict(conflict_target=[Order.source, Order.external_id], update=update)
        .returning(Order)
    )


def _event_insert(values: dict) -> Query:
    return OrderEvent.insert(values).returning(OrderEvent.id)


def _event_lookup(values: dict) -> Query:
    return OrderEvent.select(OrderEvent.id).where(
        (OrderEvent.dedupe_key == values["dedupe_key"])
        | (OrderEvent.event_key == values["event_key"])
    )


# The webhook's statements, compiled once (bot/core/statements.py says why).
EVENT_LOOKUP = Statement(OrderEvent, [OrderEvent.dedupe_key, OrderEvent.event_key], _event_lookup)
ORDER_UPSERT = Statement(Order, columns(Order), _order_upsert)
EVENT_INSERT = Statement(OrderEvent, columns(OrderEvent), _event_insert)


def usable_phone(facts: CustomerFacts, region: str | None) -> str | None:
    """The first of the order's numbers that is a valid one, in E.164 (README "Which
    number"): a customer record with "0000" does not hide the shipping address's."""
    for candidate in (facts.phone, *facts.other_phones):
        if phone := phones.to_e164(candidate, region):
            return phone
    return None


def upsert_customer(phone: str, event: IncomingEvent, now: datetime, salt: str) -> Customer:
    """The customer with `phone`, created, or renamed to the shop's latest name
    (`Erased` for an erased number)."""
    facts = event.customer
    customer, _ = get_or_create_customer(
        phone,
        now,
        salt=salt,
        rename=True,
        name=facts.name or None,
        language=facts.language,
        # The storefront's locale is the shop's hint, not the customer's choice.
        language_source="shop" if facts.language else None,
    )
    if facts.marketing_consent is not None:
        # The checkout's consent is evidence for the ledger (the shop can prove it).
        evidence = {"order_event": event.dedupe_key, "topic": event.topic}
        record = consent.record_opt_in if facts.marketing_consent else consent.record_opt_out
        record(customer, consent.MARKETING, event.source, evidence, now)
    return customer


def upsert_order(event: IncomingEvent, customer: Customer | None, now: datetime) -> Order:
    """The event's order, created or updated in one statement (an upsert).

    Later events fill in what earlier ones lacked (e.g. tracking), never erase it: a
    value the event does not carry (None) keeps the stored one.
    """
    facts = event.order
    new = Order(
        source=event.source,
        external_id=facts.external_id,
        stage=event.kind,
        customer=customer,
        created_at=now,
        updated_at=now,
        **{name: getattr(facts, name) for name in ORDER_FACTS[:-2]},
    )
    (order,) = ORDER_UPSERT.rows(row_values(new))
    return order


def insert_event(event: IncomingEvent, order: Order, now: datetime) -> OrderEvent:
    """Store the delivery itself (its dedupe key makes a racing twin fail)."""
    row = OrderEvent(
        source=event.source,
        dedupe_key=event.dedupe_key,
        external_event_id=event.external_event_id,
        event_key=event.event_key,
        topic=event.topic,
        kind=event.kind,
        order=order,
        payload=event.payload,
        received_at=now,
    )
    row.id = EVENT_INSERT.execute(row_values(row)).fetchone()[0]
    row._dirty.clear()
    return row


def plan_message(
    event: IncomingEvent,
    event_row: OrderEvent,
    order: Order,
    customer: Customer | None,
    settings: Settings,
    notifications: NotificationMap,
    now: datetime,
) -> Message | None:
    """The message row this event calls for, or None when the shop sends nothing for it.

    One notification per order, kind and `notification_key`: Shopify's orders/fulfilled
    and fulfillments/create for the same shipment produce one "shipped" message.
    """
    spec = notifications.for_kind(event.kind)
    if spec is None:
        return None
    dedupe_key = f"{event.source}:{order.external_id}:{spec.kind}:{event.notification_key}"
    spec, variant = experiments.variant_for(spec, customer.id if customer else None)
    language = choose_language(
        preferred_languages(customer, event.customer.language)
        if customer
        else [event.customer.language],
        spec.languages,
        settings.default_language,
    )
    message = Message(
        order_event=event_row,
        order=order,
        customer=customer,
        phone=customer.phone if customer else (event.customer.phone or "")[:64],
        dedupe_key=dedupe_key,
        kind=spec.kind,
        category=notifications.category_for(spec, language),
        queue="orders",
        template_name=spec.template,
        variant=variant,
        language=language,
        created_at=now,
        updated_at=now,
    )
    if customer is None:
        message.state, message.reason = State.SUPPRESSED, Reason.INVALID_PHONE
    else:
        try:
            message.params = render_params(
                spec,
                order_values(
                    order,
                    customer,
                    customer_locale(customer, event.customer.language, settings.default_language),
                ),
                notifications.fallbacks,
            )
        except MissingParameter as exc:
            message.state, message.reason = State.SUPPRESSED, Reason.MISSING_PARAMETER
            message.error_text = str(exc)
    # One notification per dedupe key: a redelivery or a racing twin inserts nothing.
    if not insert_message(message):
        return None
    if message.state == State.SUPPRESSED:  # born suppressed: the CRM hears it, with why
        publish(MessageStateChanged(message, State.SUPPRESSED, message.reason), now)
    return message
