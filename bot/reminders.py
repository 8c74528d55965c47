"""Reminders: a COD order nobody confirmed after COD_REMINDER_MINUTES gets the
COD_REMINDER_TEMPLATE; a later event for the order (confirmed, paid, cancelled,
shipped, ...) cancels the reminder first.

A reminder is an ordinary message row, deferred until it is due: the sweeper enqueues
it then, and the sender's policy (consent, quiet hours, caps) applies as to any other.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.config import Settings
from bot.models import EventKind, Message, Order, Reason, State

COD_REMINDER = "cod_reminder"
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
    kind: str | None, order: Order, message: Message | None, settings: Settings, now: datetime
) -> None:
    """The outbox's one hook, inside its transaction: cancel what the event settles,
    schedule what a new COD confirmation calls for."""
    if kind in SETTLING_KINDS:
        cancel_reminders(order, now)
    if message is not None and message.kind == EventKind.COD_CONFIRMATION:
        schedule_cod_reminder(message, settings, now)


def schedule_cod_reminder(confirmation: Message, settings: Settings, now: datetime) -> None:
    minutes, template = settings.cod_reminder_minutes, settings.cod_reminder_template
    if minutes <= 0 or not template or confirmation.state != State.QUEUED:
        return
    order = confirmation.order
    dedupe_key = f"{order.source}:{order.external_id}:{COD_REMINDER}"
    if Message.select().where(Message.dedupe_key == dedupe_key).exists():
        return
    Message.create(
        order_event=confirmation.order_event,
        order=order,
        customer=confirmation.customer,
        phone=confirmation.phone,
        dedupe_key=dedupe_key,
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
