"""Delivery receipts: store every one, then move the message's state forward only.

Meta does not promise order (a `read` can come before, or instead of, `delivered`), and
a receipt can overtake the send call's own answer. So each receipt is stored first,
matched by provider id or by our id in the callback data, and applied monotonically.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from peewee import IntegrityError, fn

from bot import consent, crm
from bot.models import Message, State, StatusEvent, db, write_transaction
from bot.models import Reason as R
from bot.providers.base import DeliveryStatus, StatusUpdate

log = logging.getLogger(__name__)

#: Meta codes that mean more than "failed", on receipts and send answers alike
#: (PROVIDERS.md §1.11): a per-user marketing cap is a delay, not an opt-out; 131050
#: means the user stopped marketing messages, which is one.
MARKETING_CAP = "131049"
MARKETING_STOPPED = "131050"
MARKETING_CAP_DELAY = timedelta(hours=24)

RANK = {State.SENT: 1, State.DELIVERED: 2, State.READ: 3}
TARGET = {
    DeliveryStatus.SENT: State.SENT,
    DeliveryStatus.DELIVERED: State.DELIVERED,
    DeliveryStatus.READ: State.READ,
}
TIMESTAMP = {State.SENT: "sent_at", State.DELIVERED: "delivered_at", State.READ: "read_at"}


def next_state(current: State, status: DeliveryStatus) -> State | None:
    """The message's new state after `status`, or None when the receipt changes nothing.

    Success receipts only ever move forward (sent < delivered < read), and they win over
    our own `failed` verdict: the provider knows it was delivered. A `failed` receipt
    only lands on a message not yet delivered.
    """
    if current == State.SUPPRESSED:
        return None
    if status == DeliveryStatus.FAILED:
        return State.FAILED if current in (State.SENDING, State.SENT, State.QUEUED) else None
    target = TARGET.get(status)
    if target is None:
        return None
    return target if RANK.get(current, 0) < RANK[target] else None


def message_id_from_callback(callback_data: str | None) -> int | None:
    """Our message id from the callback data we attached at send time ("dakiya:<id>")."""
    if not callback_data or not callback_data.startswith("dakiya:"):
        return None
    tail = callback_data.removeprefix("dakiya:")
    return int(tail) if tail.isdigit() else None


def dedupe_key(update: StatusUpdate) -> str:
    return f"{update.provider}:{update.provider_message_id}:{update.status}"


def record_updates(updates: list[StatusUpdate], now: datetime) -> list[int]:
    """Store receipts (a redelivered one is ignored); return the ids of the new rows."""
    created = []
    with write_transaction():
        for update in updates:
            key = dedupe_key(update)
            if StatusEvent.select().where(StatusEvent.dedupe_key == key).exists():
                continue
            try:
                with db.atomic():
                    row = StatusEvent.create(
                        provider=update.provider,
                        provider_message_id=update.provider_message_id,
                        status=update.status,
                        callback_data=update.callback_data,
                        dedupe_key=key,
                        error_code=update.error_code,
                        error_text=update.error_text,
                        occurred_at=update.occurred_at,
                        payload=update.raw,
                        received_at=now,
                    )
            except IntegrityError:  # the same receipt, stored concurrently
                continue
            created.append(row.id)
    return created


def find_message(event: StatusEvent) -> Message | None:
    message = Message.get_or_none(Message.provider_message_id == event.provider_message_id)
    if message is not None:
        return message
    own_id = message_id_from_callback(event.callback_data)
    return Message.get_or_none(Message.id == own_id) if own_id else None


def apply_status_event(event_id: int, now: datetime) -> State | None:
    """Apply one stored receipt to its message; return the new state, if it changed."""
    with write_transaction():
        event = StatusEvent.get_or_none(StatusEvent.id == event_id)
        if event is None or event.applied:
            return None
        message = find_message(event)
        if message is None:
            # The send's own answer has not been recorded yet; `record_sent` applies it.
            return None
        new_state = _transition(message, event, now)
        StatusEvent.update(applied=True, message=message).where(
            StatusEvent.id == event.id
        ).execute()
        if new_state:
            crm.record_event(
                crm.MESSAGE_STATUS, crm.message_status_payload(message, new_state, now), now
            )
    if new_state:
        log.info("message %s is now %s (%s receipt)", message.id, new_state, event.provider)
    return new_state


def _transition(message: Message, event: StatusEvent, now: datetime) -> State | None:
    current = State(message.state)
    target = next_state(current, DeliveryStatus(event.status))
    fields: dict = {"updated_at": now}
    if message.provider_message_id is None:
        # Reconciled through our callback data: the send's answer was lost or is late.
        fields.update(provider_message_id=event.provider_message_id, provider=event.provider)
    if (
        target == State.FAILED
        and event.error_code == MARKETING_CAP
        and message.category == "marketing"
    ):
        # Meta's per-user marketing cap: try again in a day; it is not an opt-out.
        target = State.DEFERRED
        fields.update(
            state=target,
            reason=R.PROVIDER_MARKETING_LIMIT,
            next_attempt_at=event.occurred_at + MARKETING_CAP_DELAY,
            error_code=event.error_code,
            error_text=event.error_text,
            lease_until=None,
        )
    elif target == State.FAILED:
        if event.error_code == MARKETING_STOPPED and message.customer_id:
            consent.record_opt_out(
                message.customer,
                consent.MARKETING,
                "provider_error",
                {"message_id": message.id, "code": event.error_code},
                now,
            )
        fields.update(
            state=target,
            reason=R.DELIVERY_FAILED,
            failed_at=event.occurred_at,
            error_code=event.error_code,
            error_text=event.error_text,
            lease_until=None,
        )
    elif target is not None:
        fields.update(state=target, reason=None, lease_until=None)
        # A later state implies the earlier ones happened (Meta may skip `delivered`).
        for state, column in TIMESTAMP.items():
            if RANK[state] <= RANK[target]:
                fields[column] = fn.COALESCE(getattr(Message, column), event.occurred_at)
    # Guarded on the state we read, so a concurrent receipt cannot be overwritten.
    updated = (
        Message.update(**fields)
        .where((Message.id == message.id) & (Message.state == current))
        .execute()
    )
    if updated == 0:
        return _transition(Message.get_by_id(message.id), event, now)
    return target


def apply_pending_for(provider: str, provider_message_id: str, now: datetime) -> None:
    """Apply receipts that arrived before we knew which message they belong to."""
    pending = StatusEvent.select(StatusEvent.id).where(
        (StatusEvent.provider == provider)
        & (StatusEvent.provider_message_id == provider_message_id)
        & (StatusEvent.applied == False)  # noqa: E712 (peewee expression)
    )
    for event in pending.order_by(StatusEvent.occurred_at):
        apply_status_event(event.id, now)
