"""Delivery receipts: stored once, matched by id or callback data, applied forward only."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.models import ConsentEvent, Customer, Message, Reason, State, StatusEvent, utcnow
from bot.delivery import statuses
from bot.delivery.providers.base import DeliveryStatus as D
from bot.delivery.providers.base import StatusUpdate
from tests.factories import marketing_message, queued_message


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
        provider=kw.pop("provider", "meta"),
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


@pytest.mark.parametrize("provider", ["meta", "interakt"])  # Interakt passes the code on
def test_a_marketing_cap_receipt_defers_a_marketing_message_a_day(app, provider):
    message = sent(marketing_message())
    at = datetime(2026, 11, 24, 10, 0)
    apply(receipt(message, D.FAILED, at, provider=provider, error_code="131049"))
    message = Message.get_by_id(message.id)
    assert (message.state, message.reason, message.error_code) == (
        State.DEFERRED,
        Reason.PROVIDER_MARKETING_LIMIT,
        "131049",
    )
    assert message.next_attempt_at == datetime(2026, 11, 25, 10, 0)
    assert Customer.get().marketing_opt_in is True


def test_a_marketing_cap_receipt_on_an_order_update_is_a_failure(app):
    message = sent(queued_message())
    apply(receipt(message, D.FAILED, error_code="131049"))
    assert Message.get_by_id(message.id).state == State.FAILED


@pytest.mark.parametrize("provider", ["meta", "interakt"])
def test_a_marketing_stopped_receipt_records_a_marketing_opt_out(app, provider):
    message = sent(marketing_message())
    apply(receipt(message, D.FAILED, provider=provider, error_code="131050"))
    message = Message.get_by_id(message.id)
    assert (message.state, message.reason) == (State.FAILED, Reason.DELIVERY_FAILED)
    assert Customer.get().marketing_opt_in is False
    [event] = ConsentEvent.select()
    assert (event.category, event.action, event.source) == (
        "marketing",
        "opt_out",
        "provider_error",
    )


def test_receipt_before_the_send_answer_is_matched_by_callback_data(app):
    message = queued_message()
    Message.update(state=State.SENDING).where(Message.id == message.id).execute()
    apply(receipt(message, D.SENT, provider_message_id="wamid.EARLY"))
    message = Message.get_by_id(message.id)
    assert (message.state, message.provider_message_id) == (State.SENT, "wamid.EARLY")


def test_receipt_for_an_unknown_message_waits_until_the_send_is_recorded(app):
    from bot.delivery.sending import record_sent

    message = queued_message()
    Message.update(state=State.SENDING).where(Message.id == message.id).execute()
    apply(receipt(message, D.DELIVERED, provider_message_id="wamid.LATE", callback_data=None))
    assert StatusEvent.get().applied is False
    record_sent([(message, "wamid.LATE")], "meta", utcnow())
    message = Message.get_by_id(message.id)
    assert message.state == State.DELIVERED
    assert StatusEvent.get().applied is True


# --- batches ------------------------------------------------------------------------


def test_the_same_receipt_twice_in_one_webhook_is_stored_once(app):
    message = sent(queued_message())
    update = receipt(message, D.DELIVERED)
    assert len(statuses.record_updates([update, update], utcnow())) == 1
    assert StatusEvent.select().count() == 1


def test_receipts_from_many_webhooks_are_applied_by_one_drain_job(
    client, sign, redis_conn, run_jobs
):
    from rq import Queue

    from tests.webhooks.test_whatsapp import meta_receipt, post_meta

    messages = [
        sent(queued_message(event_id=f"e{i}", order_id=f"O{i}"), f"wamid.B{i}") for i in range(4)
    ]
    for message in messages:
        for status in ("sent", "delivered", "read"):
            body = meta_receipt(status, message.provider_message_id)
            assert post_meta(client, sign, body).status_code == 200
    assert Queue("statuses", connection=redis_conn).count == 1  # twelve webhooks, one job
    run_jobs()
    assert {Message.get_by_id(m.id).state for m in messages} == {State.READ}
    assert StatusEvent.select().where(StatusEvent.applied == False).count() == 0  # noqa: E712


def test_a_drain_job_out_of_time_hands_the_rest_to_a_fresh_job(
    app, redis_conn, run_jobs, monkeypatch
):
    from rq import Queue

    from bot.delivery import receipts
    from bot.extensions import services

    messages = [
        sent(queued_message(event_id=f"e{i}", order_id=f"O{i}"), f"wamid.T{i}") for i in range(3)
    ]
    queues = services().queues
    receipts.hand_over(
        queues, statuses.record_updates([receipt(m, D.DELIVERED) for m in messages], utcnow())
    )
    statuses_queue = Queue("statuses", connection=redis_conn)
    statuses_queue.empty()  # the drain job below is the one that was pending
    monkeypatch.setattr(statuses, "BATCH_SIZE", 2)
    assert receipts.drain(queues, budget_seconds=0) == 2  # one batch, then out of time
    assert [Message.get_by_id(m.id).state for m in messages] == [State.DELIVERED] * 2 + [State.SENT]
    assert statuses_queue.count == 1  # a fresh drain job carries on
    run_jobs()
    assert {Message.get_by_id(m.id).state for m in messages} == {State.DELIVERED}


def test_a_batch_mixing_failures_and_progress_applies_each_message_its_own_way(app):
    ok, failing = (
        sent(queued_message(event_id=f"e{i}", order_id=f"O{i}"), f"wamid.M{i}") for i in range(2)
    )
    at = datetime(2026, 11, 24, 10, 0)
    updates = [
        receipt(ok, D.DELIVERED, at),
        receipt(failing, D.FAILED, at, error_code="131026", error_text="undeliverable"),
        receipt(ok, D.READ, at.replace(minute=1)),
    ]
    assert statuses.apply_status_events(statuses.record_updates(updates, utcnow()), utcnow()) == 2
    ok, failing = Message.get_by_id(ok.id), Message.get_by_id(failing.id)
    assert (ok.state, ok.delivered_at, ok.read_at) == (State.READ, at, at.replace(minute=1))
    assert (failing.state, failing.error_code) == (State.FAILED, "131026")
    assert StatusEvent.select().where(StatusEvent.applied == True).count() == 3  # noqa: E712


STARTS = [State.SENDING, State.SENT, State.DELIVERED, State.FAILED, State.QUEUED]
RECEIPTS = st.lists(
    st.tuples(
        st.integers(0, 2),  # which message
        st.sampled_from([D.SENT, D.DELIVERED, D.READ, D.FAILED]),
        st.integers(0, 5),  # minute: ties and out-of-order arrival included
        st.booleans(),  # matched by callback data only (the send's answer not recorded)
    ),
    max_size=9,
)
_run = iter(range(10**6))


def _messages(starts: list[State], run: int, copy: str) -> list[Message]:
    made = []
    for i, start in enumerate(starts):
        message = queued_message(event_id=f"p{run}{copy}{i}", order_id=f"P{run}{copy}{i}")
        Message.update(
            state=start, provider="meta", provider_message_id=f"wamid.{message.id}"
        ).where(Message.id == message.id).execute()
        made.append(Message.get_by_id(message.id))
    return made


def _updates(messages: list[Message], receipts) -> list[StatusUpdate]:
    at = datetime(2026, 11, 24, 10, 0)
    return [
        StatusUpdate(
            provider="meta",
            provider_message_id=f"wamid.early.{messages[i].id}"
            if early
            else f"wamid.{messages[i].id}",
            status=status,
            occurred_at=at.replace(minute=minute),
            callback_data=f"dakiya:{messages[i].id}",
            error_code="131026" if status == D.FAILED else None,
        )
        for i, status, minute, early in receipts
    ]


def _outcome(message: Message) -> tuple:
    m = Message.get_by_id(message.id)
    return (m.state, m.reason, m.sent_at, m.delivered_at, m.read_at, m.failed_at, m.error_code)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(starts=st.lists(st.sampled_from(STARTS), min_size=3, max_size=3), receipts=RECEIPTS)
def test_a_batch_ends_where_the_receipts_one_at_a_time_in_time_order_end(app, starts, receipts):
    run = next(_run)
    batch, single = _messages(starts, run, "b"), _messages(starts, run, "s")
    now = utcnow()
    statuses.apply_status_events(statuses.record_updates(_updates(batch, receipts), now), now)
    ids = statuses.record_updates(_updates(single, receipts), now)
    in_time_order = StatusEvent.select().where(StatusEvent.id.in_(ids))
    for event in in_time_order.order_by(StatusEvent.occurred_at, StatusEvent.id):
        statuses.apply_status_event(event.id, now)
    assert [_outcome(m) for m in batch] == [_outcome(m) for m in single]
