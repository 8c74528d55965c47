"""Sending: one claim per message, the policy at send time, retries by error class,
dead letters, and ambiguous sends held for their receipt instead of resent."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from bot.core.models import AuditLog, Customer, Message, Reason, State, utcnow
from bot.delivery import sending
from bot.delivery.backoff import backoff_seconds
from bot.delivery.claims import claim_message
from bot.delivery.providers.base import ErrorKind, ProviderError
from bot.delivery.sending import Fail, Hold, Retry
from bot.extensions import services
from tests.factories import queued_message
from tests.fakes.provider_server import meta_error as fake_meta_error


@pytest.fixture
def meta_app(make_app, meta_settings):
    return make_app(meta_settings)


def meta_error(code: int, message: str = "error", status: int = 400) -> tuple[int, dict]:
    return status, fake_meta_error(code, message, details=message)


@pytest.mark.parametrize(
    ("attempt", "jitter", "expected"),
    [(1, 0.0, 15), (1, 0.999999, 29.99997), (2, 0.0, 30), (3, 0.5, 90), (20, 0.0, 1800)],
)
def test_backoff_doubles_with_jitter_and_is_capped(attempt, jitter, expected):
    assert backoff_seconds(attempt, base=30, cap=3600, jitter=jitter) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("kind", "attempts", "expected"),
    [
        (ErrorKind.PERMANENT, 1, Fail(Reason.PROVIDER_REJECTED)),
        (ErrorKind.RETRY, 6, Fail(Reason.RETRIES_EXHAUSTED)),
        (ErrorKind.RATE_LIMITED, 6, Fail(Reason.RETRIES_EXHAUSTED)),
        (ErrorKind.AMBIGUOUS, 6, Fail(Reason.RETRIES_EXHAUSTED)),
    ],
)
def test_errors_that_end_a_message(settings, kind, attempts, expected):
    error = ProviderError("x", kind=kind)
    assert sending.next_step_after_error(error, attempts, settings, utcnow(), 0.0) == expected


def test_retryable_error_is_retried_later_and_rate_limits_wait_at_least_retry_after(settings):
    now = utcnow()
    step = sending.next_step_after_error(
        ProviderError("5xx", kind=ErrorKind.RETRY), 1, settings, now, 0.0
    )
    assert step == Retry(now + timedelta(seconds=15))
    limited = ProviderError("429", kind=ErrorKind.RATE_LIMITED, retry_after=120)
    assert sending.next_step_after_error(limited, 1, settings, now, 0.0) == Retry(
        now + timedelta(seconds=120)
    )


def test_ambiguous_send_is_held_for_its_receipt(settings):
    now = utcnow()
    step = sending.next_step_after_error(
        ProviderError("timeout", kind=ErrorKind.AMBIGUOUS), 1, settings, now, 0.0
    )
    assert step == Hold(now + timedelta(seconds=settings.ambiguous_send_hold_seconds))


def test_only_one_of_many_concurrent_claims_wins(app):
    message = queued_message()
    now = utcnow()
    barrier = threading.Barrier(8)
    wins = []

    def claim():
        barrier.wait()
        from bot.core.models import db

        with db.connection_context():
            wins.append(claim_message(message.id, now, 60))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 7 + [True]
    assert Message.get_by_id(message.id).attempts == 1


def test_a_message_enqueued_twice_is_sent_once(meta_app, fake_whatsapp, run_jobs):
    message = queued_message()
    services().queues["orders"].enqueue("jobs.send.send_message", message.id)
    run_jobs()
    assert len(fake_whatsapp.requests) == 1
    assert Message.get_by_id(message.id).state == State.SENT


def test_sent_message_records_the_provider_id_and_callback_data(meta_app, fake_whatsapp, run_jobs):
    message = queued_message()
    run_jobs()
    message = Message.get_by_id(message.id)
    assert message.state == State.SENT
    assert message.provider_message_id.startswith("wamid.FAKE")
    body = fake_whatsapp.requests[0].json
    assert body["biz_opaque_callback_data"] == f"dakiya:{message.id}"
    assert body["template"]["name"] == "order_shipped"
    assert fake_whatsapp.requests[0].headers["Authorization"] == "Bearer test-meta-token"


def test_opt_out_while_queued_suppresses_at_send_time(meta_app, fake_whatsapp, run_jobs):
    message = queued_message()
    Customer.update(opted_out=True).execute()
    run_jobs()
    message = Message.get_by_id(message.id)
    assert (message.state, message.reason) == (State.SUPPRESSED, Reason.OPTED_OUT)
    assert fake_whatsapp.requests == []


@pytest.mark.parametrize("code", [131026, 131047, 132001, 131008])
def test_permanent_errors_fail_at_once_with_the_providers_code(
    meta_app, fake_whatsapp, run_jobs, code
):
    fake_whatsapp.script(meta_error(code, "Message undeliverable"))
    message = queued_message()
    run_jobs()
    message = Message.get_by_id(message.id)
    assert (message.state, message.reason, message.error_code) == (
        State.FAILED,
        Reason.PROVIDER_REJECTED,
        str(code),
    )
    assert "undeliverable" in message.error_text
    assert message.attempts == 1 and len(fake_whatsapp.requests) == 1


@pytest.mark.parametrize(
    "response",
    [
        meta_error(131000, "Something went wrong", 500),
        meta_error(130429, "Rate limit hit", 429),
        (503, {}),
    ],
)
def test_retryable_errors_are_retried_with_backoff(meta_app, fake_whatsapp, run_jobs, response):
    fake_whatsapp.script(response)
    message = queued_message()
    run_jobs()
    message = Message.get_by_id(message.id)
    assert (message.state, message.reason) == (State.QUEUED, Reason.RETRYING)
    assert message.next_attempt_at > utcnow() + timedelta(seconds=10)
    assert len(fake_whatsapp.requests) == 1


def test_retry_succeeds_once_the_backoff_has_passed(
    meta_app, fake_whatsapp, run_jobs, time_machine
):
    time_machine.move_to(utcnow(), tick=True)
    fake_whatsapp.script(meta_error(131016, "Service unavailable", 503))
    message = queued_message()
    run_jobs()
    time_machine.shift(timedelta(hours=1))
    run_jobs()
    message = Message.get_by_id(message.id)
    assert message.state == State.SENT and message.attempts == 2
    assert len(fake_whatsapp.requests) == 2


def test_message_is_dead_lettered_after_the_last_attempt_and_an_admin_can_retry_it(
    meta_app, fake_whatsapp, run_jobs, time_machine
):
    time_machine.move_to(utcnow(), tick=True)
    attempts = services().settings.max_send_attempts
    fake_whatsapp.script(*[meta_error(1, "API Unknown", 500)] * attempts)
    message = queued_message()
    for _ in range(attempts):
        run_jobs()
        time_machine.shift(timedelta(hours=2))
    message = Message.get_by_id(message.id)
    assert (message.state, message.reason) == (State.FAILED, Reason.RETRIES_EXHAUSTED)
    assert len(fake_whatsapp.requests) == attempts

    assert sending.retry_failed_message(message.id, services().queues, utcnow())
    run_jobs()
    assert Message.get_by_id(message.id).state == State.SENT
    assert len(fake_whatsapp.requests) == attempts + 1


def test_ambiguous_send_is_not_resent_when_its_receipt_arrives(
    meta_app, fake_whatsapp, run_jobs, time_machine
):
    from bot.delivery import statuses
    from bot.delivery.providers.base import DeliveryStatus, StatusUpdate

    time_machine.move_to(utcnow(), tick=True)
    fake_whatsapp.script((200, {"messaging_product": "whatsapp"}))  # accepted, but no id came back
    message = queued_message()
    run_jobs()
    assert Message.get_by_id(message.id).reason == Reason.AWAITING_RECEIPT
    update = StatusUpdate(
        "meta", "wamid.REAL", DeliveryStatus.SENT, utcnow(), callback_data=message.callback_data
    )
    for event_id in statuses.record_updates([update], utcnow()):
        statuses.apply_status_event(event_id, utcnow())
    time_machine.shift(timedelta(hours=1))
    from jobs.sweep import sweep_once

    sweep_once(services(), utcnow())
    run_jobs()
    message = Message.get_by_id(message.id)
    assert (message.state, message.provider_message_id) == (State.SENT, "wamid.REAL")
    assert len(fake_whatsapp.requests) == 1


def test_ambiguous_send_without_any_receipt_is_sent_again_after_the_hold(
    meta_app, fake_whatsapp, run_jobs, time_machine
):
    time_machine.move_to(utcnow(), tick=True)
    fake_whatsapp.script((200, {"messaging_product": "whatsapp"}))
    message = queued_message()
    run_jobs()
    time_machine.shift(timedelta(seconds=services().settings.ambiguous_send_hold_seconds + 1))
    from jobs.sweep import sweep_once

    assert sweep_once(services(), utcnow())["messages_requeued"] == 1
    run_jobs()
    assert Message.get_by_id(message.id).state == State.SENT
    assert len(fake_whatsapp.requests) == 2


def test_send_rate_limit_puts_the_message_back_without_counting_an_attempt(
    make_app, meta_settings, fake_whatsapp, run_jobs
):
    make_app(meta_settings.replace(send_rate_per_second=1, rate_wait_seconds=0))
    first, second = (
        queued_message(event_id="a", order_id="1"),
        queued_message(event_id="b", order_id="2", phone="+919876543210"),
    )
    run_jobs(max_rounds=1)
    states = sorted(Message.get_by_id(m.id).state for m in (first, second))
    assert states == [State.QUEUED, State.SENT]
    waiting = Message.get(Message.state == State.QUEUED)
    assert (waiting.reason, waiting.attempts) == (Reason.RATE_LIMITED, 0)
    assert len(fake_whatsapp.requests) == 1


def test_interakt_send_goes_through_its_public_api(make_app, settings, fake_whatsapp, run_jobs):
    make_app(
        settings.replace(whatsapp_provider="interakt", interakt_api_base_url=fake_whatsapp.url)
    )
    message = queued_message()
    run_jobs()
    [request] = fake_whatsapp.requests
    assert request.path == "/v1/public/message/"
    assert request.headers["Authorization"] == "Basic dGVzdC1pbnRlcmFrdC1rZXk6"
    assert request.json["fullPhoneNumber"] == "919812345678"
    assert request.json["callbackData"] == f"dakiya:{message.id}"
    assert request.json["template"]["name"] == "order_shipped"
    message = Message.get_by_id(message.id)
    assert (message.state, message.provider) == (State.SENT, "interakt")


def test_an_admin_cancels_a_message_only_while_it_waits_to_be_sent(app):
    waiting = queued_message()
    sending_now = queued_message(event_id="evt-2", order_id="1044")
    Message.update(state=State.SENDING).where(Message.id == sending_now.id).execute()

    assert sending.cancel_message(waiting.id, "admin", utcnow()) is True
    assert sending.cancel_message(waiting.id, "admin", utcnow()) is False  # settled now
    assert sending.cancel_message(sending_now.id, "admin", utcnow()) is False

    waiting = Message.get_by_id(waiting.id)
    assert (waiting.state, waiting.reason) == (State.SUPPRESSED, Reason.CANCELLED)
    assert Message.get_by_id(sending_now.id).state == State.SENDING
    [entry] = AuditLog.select().where(AuditLog.action == "cancel_message")
    assert (entry.actor, entry.subject) == ("admin", str(waiting.id))


def test_a_stop_written_while_a_batch_goes_out_wins_over_its_decision(
    app, run_jobs, redis_conn, monkeypatch
):
    """Issue 19: a batch is decided, then sent chunk by chunk over up to a second or
    more; a customer who opts out meanwhile is checked again before their chunk goes."""
    from bot.delivery.providers.sandbox import recorded

    stopping = queued_message(phone="+919812345678", event_id="evt-a", order_id="1")
    going = queued_message(phone="+919812345679", event_id="evt-b", order_id="2")
    decide_all = sending.Sender.decide_all

    def decide_then_stop(self, batch, now):
        decisions = decide_all(self, batch, now)
        Customer.update(opted_out=True).where(Customer.id == stopping.customer_id).execute()
        return decisions

    monkeypatch.setattr(sending.Sender, "decide_all", decide_then_stop)
    run_jobs()

    stopped = Message.get_by_id(stopping.id)
    assert (stopped.state, stopped.reason) == (State.SUPPRESSED, Reason.OPTED_OUT)
    assert Message.get_by_id(going.id).provider_message_id  # sent (and played back)
    assert [r["message_id"] for r in recorded(redis_conn)] == [going.id]
