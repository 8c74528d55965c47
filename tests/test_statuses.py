"""Delivery receipts: stored once, matched by id or callback data, applied forward only."""

from __future__ import annotations

from datetime import datetime

import pytest

from bot import statuses
from bot.models import Message, Reason, State, StatusEvent, utcnow
from bot.providers.base import DeliveryStatus as D
from bot.providers.base import StatusUpdate
from tests.factories import queued_message


@pytest.mark.parametrize(
    ("current", "status", "expected"),
    [
        (State.SENDING, D.SENT, State.SENT),
        (State.SENT, D.DELIVERED, State.DELIVERED),
        (State.SENT, D.READ, State.READ),  # Meta may skip `delivered`
        (State.DELIVERED, D.READ, State.READ),
        (State.READ, D.DELIVERED, None),  # a late `delivered` never regresses `read`
        (State.READ, D.SENT, None),
        (State.DELIVERED, D.SENT, None),
        (State.DELIVERED, D.DELIVERED, None),
        (State.SENT, D.FAILED, State.FAILED),
        (State.SENDING, D.FAILED, State.FAILED),
        (State.DELIVERED, D.FAILED, None),
        (State.READ, D.FAILED, None),
        (State.FAILED, D.DELIVERED, State.DELIVERED),  # the provider knows better than we do
        (State.QUEUED, D.SENT, State.SENT),  # a retry was pending, but the first try got through
        (State.SUPPRESSED, D.SENT, None),
        (State.SENT, D.UNKNOWN, None),
    ],
)
def test_state_moves_only_forward(current, status, expected):
    assert statuses.next_state(current, status) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("dakiya:42", 42),
        ("dakiya:", None),
        ("order:1042:shipped", None),
        (None, None),
        ("dakiya:4x", None),
    ],
)
def test_callback_data_names_our_message(data, expected):
    assert statuses.message_id_from_callback(data) == expected


def receipt(message: Message, status: D, at: datetime | None = None, **kw) -> StatusUpdate:
    return StatusUpdate(
        provider="meta",
        provider_message_id=kw.pop(
            "provider_message_id", message.provider_message_id or "wamid.X1"
        ),
        status=status,
        occurred_at=at or utcnow(),
        callback_data=kw.pop("callback_data", message.callback_data),
        **kw,
    )


def apply(*updates: StatusUpdate) -> None:
    for event_id in statuses.record_updates(list(updates), utcnow()):
        statuses.apply_status_event(event_id, utcnow())


def sent(message: Message, provider_message_id: str = "wamid.X1") -> Message:
    Message.update(
        state=State.SENT, provider="meta", provider_message_id=provider_message_id
    ).where(Message.id == message.id).execute()
    return Message.get_by_id(message.id)


def test_read_before_delivered_ends_read_with_both_timestamps(app):
    message = sent(queued_message())
    apply(receipt(message, D.READ, datetime(2026, 11, 24, 10, 5)))
    apply(receipt(message, D.DELIVERED, datetime(2026, 11, 24, 10, 4)))
    message = Message.get_by_id(message.id)
    assert message.state == State.READ
    assert message.read_at == datetime(2026, 11, 24, 10, 5)
    assert message.delivered_at == datetime(2026, 11, 24, 10, 5)
    assert StatusEvent.select().count() == 2


def test_redelivered_receipt_is_stored_once(app):
    message = sent(queued_message())
    update = receipt(message, D.DELIVERED)
    assert len(statuses.record_updates([update], utcnow())) == 1
    assert statuses.record_updates([update], utcnow()) == []
    assert StatusEvent.select().count() == 1


def test_failed_receipt_records_the_providers_code(app):
    message = sent(queued_message())
    apply(
        receipt(message, D.FAILED, error_code="131049", error_text="healthy ecosystem engagement")
    )
    message = Message.get_by_id(message.id)
    assert (message.state, message.reason, message.error_code) == (
        State.FAILED,
        Reason.DELIVERY_FAILED,
        "131049",
    )
    assert message.failed_at is not None


def test_receipt_before_the_send_answer_is_matched_by_callback_data(app):
    message = queued_message()
    Message.update(state=State.SENDING).where(Message.id == message.id).execute()
    apply(receipt(message, D.SENT, provider_message_id="wamid.EARLY"))
    message = Message.get_by_id(message.id)
    assert (message.state, message.provider_message_id) == (State.SENT, "wamid.EARLY")


def test_receipt_for_an_unknown_message_waits_until_the_send_is_recorded(app):
    from bot.sending import record_sent

    message = queued_message()
    Message.update(state=State.SENDING).where(Message.id == message.id).execute()
    apply(receipt(message, D.DELIVERED, provider_message_id="wamid.LATE", callback_data=None))
    assert StatusEvent.get().applied is False
    record_sent([(message, "wamid.LATE")], "meta", utcnow())
    message = Message.get_by_id(message.id)
    assert message.state == State.DELIVERED
    assert StatusEvent.get().applied is True
