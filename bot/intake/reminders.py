"""Reminders: a COD order nobody confirmed after COD_REMINDER_MINUTES gets the
COD_REMINDER_TEMPLATE; a later event for the order (confirmed, paid, cancelled,
shipped, ...) cancels the reminder first.

A Shopify checkout left open gets CART_REMINDER_TEMPLATE (customer_name, checkout_url)
after CART_REMINDER_MINUTES, a marketing message; an order placed from that checkout,
or the checkout completing, cancels it first.

A reminder is an ordinary message row, deferred until it is due: the sweeper enqueues
it then, and the sender's policy (consent, quiet hours, caps) applies as to any other.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.core.config import Settings
from bot.core.models import Category, EventKind, Message, Order, Reason, State
from bot.core.models import OrderEvent as EventRow
from bot.core.notifications import COD_REMINDER
from bot.core.rows import insert_message
from bot.intake.sources.base import OrderEvent, checkout_external_id

CART_REMINDER = "cart_reminder"
REMINDER_KINDS = (COD_REMINDER, CART_REMINDER)

#: Events after which a pending reminder would be wrong: the order moved on.
SETTLING_KINDS = frozenset(
    {
        EventKind.CONFIRMED,
        EventKind.CANCELLED,
        EventKind.SHIPPED,
        EventKind.OUT_FOR_DELIVERY,
        EventKind.DELIVERED,
        EventKind.REFUNDED,
    }
)


def after_event(
    event: OrderEvent,
    row: EventRow,
    order: Order,
    message: Message | None,
    settings: Settings,
    now: datetime,
) -> None:
    """The outbox's one hook, inside its transaction: cancel what the event settles,
    schedule what a new COD confirmation or an open checkout calls for."""
    if event.kind in SETTLING_KINDS:
        cancel_reminders(order, now)
    if message is not None and message.kind == EventKind.COD_CONFIRMATION:
        schedule_cod_reminder(message, settings, now)
    if event.checkout_token and event.checkout_open:
        schedule_cart_reminder(row, order, settings, now)
    elif event.checkout_token:  # an order placed from the checkout, or the checkout completed
        cancel_cart_reminder(event.source, event.checkout_token, now)


def schedule_cod_reminder(confirmation: Message, settings: Settings, now: datetime) -> None:
    minutes, template = settings.cod_reminder_minutes, settings.cod_reminder_template
    if minutes <= 0 or not template or confirmation.state != State.QUEUED:
        return
    order = confirmation.order
    reminder = Message(
        order_event=confirmation.order_event,
        order=order,
        customer=confirmation.customer,
        phone=confirmation.phone,
        dedupe_key=f"{order.source}:{order.external_id}:{COD_REMINDER}",
        kind=COD_REMINDER,
        category=confirmation.category,
        queue=confirmation.queue,
        template_name=template,
        language=confirmation.language,
        params=confirmation.params,  # the confirmation's parameters, in the same order
        state=State.DEFERRED,
        next_attempt_at=now + timedelta(minutes=minutes),
        created_at=now,
        updated_at=now,
    )
    insert_message(reminder)  # once per order: a repeat inserts nothing


def schedule_cart_reminder(
    row: EventRow, checkout: Order, settings: Settings, now: datetime
) -> None:
    """One reminder per checkout (checkouts/update repeats), deferred; marketing, so the
    sender's policy wants marketing consent and keeps marketing quiet hours."""
    minutes, template = settings.cart_reminder_minutes, settings.cart_reminder_template
    customer = checkout.customer
    if minutes <= 0 or not template or customer is None:
        return
    body = [customer.name, checkout.status_url]  # customer_name, checkout_url
    missing = not all(body)
    reminder = Message(
        order_event=row,
        order=checkout,
        customer=customer,
        phone=customer.phone,
        dedupe_key=f"{checkout.source}:{checkout.external_id}:{CART_REMINDER}",
        kind=CART_REMINDER,
        category=Category.MARKETING,
        queue="orders",
        template_name=template,
        language=settings.default_language,
        params={"header": [], "body": body, "buttons": []},
        state=State.SUPPRESSED if missing else State.DEFERRED,
        reason=Reason.MISSING_PARAMETER if missing else None,
        next_attempt_at=now + timedelta(minutes=minutes),
        created_at=now,
        updated_at=now,
    )
    insert_message(reminder)  # once per checkout: checkouts/update repeats


def cancel_cart_reminder(source: str, checkout_token: str, now: datetime) -> int:
    checkout = Order.get_or_none(source=source, external_id=checkout_external_id(checkout_token))
    return cancel_reminders(checkout, now) if checkout is not None else 0


def cancel_reminders(order: Order, now: datetime) -> int:
    """Suppress the order's reminders that have not been sent yet."""
    return (
        Message.update(state=State.SUPPRESSED, reason=Reason.CANCELLED, updated_at=now)
        .where(
            (Message.order == order)
            & Message.kind.in_(REMINDER_KINDS)
            & Message.state.in_([State.QUEUED, State.DEFERRED])
        )
        .execute()
    )
