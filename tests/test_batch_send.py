"""The batch sender: one `send_due` job claims a batch, decides each message, takes rate
slots in bulk, sends concurrently and records every outcome; kicks are deduplicated."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from rq import Queue
from rq.registry import ScheduledJobRegistry

from bot.core.models import Customer, Message, Reason, State, utcnow
from bot.delivery import dispatch
from bot.delivery.claims import claim_due, claim_ids, find_stranded_messages
from bot.extensions import services
from tests.factories import marketing_message, queued_message
from tests.test_sending import meta_error


def phone(i: int) -> str:
    return f"+9198{i:08d}"


def order_messages(count: int, start: int = 0) -> list[Message]:
    return [
        queued_message(event_id=f"e{i}", order_id=str(i), phone=phone(i))
        for i in range(start, start + count)
    ]


def callback_counts(fake) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in fake.requests:
        key = r.json.get("biz_opaque_callback_data") or r.json.get("callbackData")
        counts[key] = counts.get(key, 0) + 1
    return counts


def test_a_burst_of_events_costs_one_pending_send_job(app, redis_conn):
    order_messages(25)
    queue = Queue("orders", connection=redis_conn)
    assert [job.func_name for job in queue.jobs] == [dispatch.SEND_DUE_JOB]


def test_one_job_sends_a_whole_batch_each_message_once(
    make_app, meta_settings, fake_whatsapp, run_jobs
):
    make_app(meta_settings.replace(send_rate_per_second=1000))
    fake_whatsapp.latency = 0.05
    messages = order_messages(40)
    assert run_jobs() == 1  # one job, not forty
    assert callback_counts(fake_whatsapp) == {f"dakiya:{m.id}": 1 for m in messages}
    stored = list(Message.select().order_by(Message.id))
    assert {m.state for m in stored} == {State.SENT}
    assert all(m.provider_message_id.startswith("wamid.FAKE") for m in stored)
    assert len({m.provider_message_id for m in stored}) == 40
    assert all(m.attempts == 1 and m.sent_at is not None for m in stored)


def test_a_full_batch_calls_in_another_worker(make_app, meta_settings, fake_whatsapp, redis_conn):
    make_app(meta_settings.replace(send_batch_size=5, send_job_seconds=0))
    order_messages(12)
    queue = Queue("orders", connection=redis_conn)
    queue.empty()
    redis_conn.delete(dispatch.KICK_KEY.format(queue="orders"))
    outcomes = dispatch.drain(services().sender, services().queues, "orders", budget_seconds=0)
    assert outcomes == {"sent": 5}  # out of time after one batch ...
    assert [job.func_name for job in queue.jobs] == [dispatch.SEND_DUE_JOB]  # ... handed on
    assert Message.select().where(Message.state == State.QUEUED).count() == 7


def test_a_stop_request_ends_the_drain_after_the_running_batch(
    make_app, meta_settings, fake_whatsapp, redis_conn
):
    make_app(meta_settings.replace(send_batch_size=3))
    order_messages(7)
    Queue("orders", connection=redis_conn).empty()
    dispatch.stop_requested.set()
    try:
        outcomes = dispatch.drain(services().sender, services().queues, "orders", budget_seconds=60)
    finally:
        dispatch.stop_requested.clear()
    assert outcomes == {"sent": 3}
    assert Message.select().where(Message.state == State.QUEUED).count() == 4
    assert len(Queue("orders", connection=redis_conn).jobs) == 1


def test_mixed_outcomes_in_one_batch_are_each_recorded(
    make_app, meta_settings, fake_whatsapp, run_jobs, redis_conn
):
    make_app(meta_settings.replace(retry_base_seconds=60))
    fine, rejected, flaky, stopped = order_messages(4)
    Customer.update(opted_out=True).where(Customer.id == stopped.customer_id).execute()
    fake_whatsapp.by_recipient[rejected.phone.removeprefix("+")] = meta_error(
        131026, "undeliverable"
    )
    fake_whatsapp.by_recipient[flaky.phone.removeprefix("+")] = meta_error(131000, "oops", 500)
    run_jobs()
    assert callback_counts(fake_whatsapp) == {
        f"dakiya:{fine.id}": 1,
        f"dakiya:{rejected.id}": 1,
        f"dakiya:{flaky.id}": 1,
    }
    state = {m.id: (m.state, m.reason, m.error_code) for m in Message.select()}
    assert state[fine.id] == (State.SENT, None, None)
    assert state[rejected.id] == (State.FAILED, Reason.PROVIDER_REJECTED, "131026")
    assert state[flaky.id] == (State.QUEUED, Reason.RETRYING, "131000")
    assert state[stopped.id][:2] == (State.SUPPRESSED, Reason.OPTED_OUT)
    # The retry is a scheduled send job at its time, not a job per message now.
    scheduled = ScheduledJobRegistry(queue=Queue("orders", connection=redis_conn))
    [job_id] = scheduled.get_job_ids()
    assert Queue("orders", connection=redis_conn).fetch_job(job_id).func_name == (
        dispatch.SEND_DUE_JOB
    )
    retry_at = Message.get_by_id(flaky.id).next_attempt_at
    assert retry_at > utcnow() + timedelta(seconds=25)


def test_the_same_template_twice_to_one_customer_in_one_batch_goes_once(
    make_app, settings, run_jobs
):
    make_app(settings.replace(quiet_hours_marketing="", min_gap_seconds=0))
    first = marketing_message(key="same")
    copy = Message.create(
        **{
            **{
                f.name: getattr(first, f.name)
                for f in Message._meta.sorted_fields
                if f.name != "id"
            },
            "dedupe_key": "campaign:copy",
        }
    )
    services().queues["campaigns"].enqueue(dispatch.SEND_DUE_JOB, "campaigns")
    run_jobs()
    states = {m.id: (m.state, m.reason) for m in Message.select()}
    assert states[first.id][0] in (State.SENT, State.DELIVERED, State.READ)
    assert states[copy.id] == (State.SUPPRESSED, Reason.DUPLICATE)


def test_rate_slots_are_taken_in_bulk_and_the_rest_put_back_uncounted(
    make_app, meta_settings, fake_whatsapp, run_jobs
):
    make_app(meta_settings.replace(send_rate_per_second=2, rate_wait_seconds=0))
    order_messages(5)
    run_jobs(max_rounds=1)
    assert len(fake_whatsapp.requests) == 2
    waiting = list(Message.select().where(Message.state == State.QUEUED))
    assert len(waiting) == 3
    assert {(m.reason, m.attempts) for m in waiting} == {(Reason.RATE_LIMITED, 0)}


def test_a_batch_waits_for_rate_slots_instead_of_putting_messages_back(
    make_app, meta_settings, fake_whatsapp, run_jobs
):
    make_app(meta_settings.replace(send_rate_per_second=3, rate_wait_seconds=5))
    messages = order_messages(5)
    run_jobs(max_rounds=1)
    assert callback_counts(fake_whatsapp) == {f"dakiya:{m.id}": 1 for m in messages}


def test_a_read_timeout_in_a_batch_is_held_not_resent(
    make_app, meta_settings, fake_whatsapp, run_jobs
):
    make_app(meta_settings.replace(provider_timeout_seconds=0.2))
    fake_whatsapp.latency = 1.0
    messages = order_messages(2)
    run_jobs(max_rounds=1)
    for m in messages:
        m = Message.get_by_id(m.id)
        assert (m.state, m.reason) == (State.SENDING, Reason.AWAITING_RECEIPT)
        assert m.lease_until > utcnow() + timedelta(seconds=600)


def test_a_refused_connection_in_a_batch_is_retried_not_held(make_app, meta_settings, run_jobs):
    from tests.fakes.redis_server import free_port

    make_app(meta_settings.replace(meta_api_base_url=f"http://127.0.0.1:{free_port()}"))
    messages = order_messages(2)
    run_jobs(max_rounds=1)
    for m in messages:
        m = Message.get_by_id(m.id)
        assert (m.state, m.reason) == (State.QUEUED, Reason.RETRYING)


def test_interakt_batches_go_out_concurrently_too(make_app, settings, fake_whatsapp, run_jobs):
    make_app(
        settings.replace(whatsapp_provider="interakt", interakt_api_base_url=fake_whatsapp.url)
    )
    messages = order_messages(3)
    run_jobs()
    assert callback_counts(fake_whatsapp) == {f"dakiya:{m.id}": 1 for m in messages}
    assert {m.state for m in Message.select()} == {State.SENT}


def test_concurrent_claims_never_share_a_message(app):
    messages = order_messages(30)
    now = utcnow()
    claimed: list[list[int]] = []

    def claim() -> None:
        from bot.core.models import db

        with db.connection_context():
            claimed.append([m.id for m in claim_due(now, 7, 60)])

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [i for batch in claimed for i in batch]
    assert len(ids) == len(set(ids)) == 30
    assert set(ids) == {m.id for m in messages}


def test_order_messages_are_claimed_before_campaign_messages(app):
    campaign = [marketing_message(customer_phone=phone(i), key=f"k{i}") for i in range(3)]
    orders = order_messages(2, start=10)
    batch = claim_due(utcnow(), 3, 60)
    assert [m.id for m in batch] == [orders[0].id, orders[1].id, campaign[0].id]


def test_claims_skip_messages_not_yet_due_and_take_expired_leases(app):
    later, stuck = order_messages(2)
    now = utcnow()
    Message.update(next_attempt_at=now + timedelta(minutes=5)).where(
        Message.id == later.id
    ).execute()
    Message.update(state=State.SENDING, lease_until=now - timedelta(seconds=1)).where(
        Message.id == stuck.id
    ).execute()
    assert [m.id for m in claim_due(now, 10, 60)] == [stuck.id]
    assert claim_due(now, 10, 60) == []  # its lease is ours now


@pytest.mark.parametrize("queue", ["orders", "campaigns"])
def test_the_sweeper_kicks_even_when_a_stale_trigger_says_a_job_is_pending(app, redis_conn, queue):
    from jobs.sweep import sweep_once

    message = marketing_message() if queue == "campaigns" else order_messages(1)[0]
    rq_queue = Queue(queue, connection=redis_conn)
    rq_queue.empty()  # the pending job was lost; its trigger key still blocks kicks
    redis_conn.set(dispatch.KICK_KEY.format(queue=queue), "1")
    later = utcnow() + timedelta(seconds=services().settings.sweep_interval_seconds + 1)
    Message.update(updated_at=utcnow() - timedelta(minutes=5)).where(
        Message.id == message.id
    ).execute()
    assert sweep_once(services(), later)["messages_requeued"] == 1
    assert [job.func_name for job in rq_queue.jobs] == [dispatch.SEND_DUE_JOB]


def test_a_batch_in_flight_is_recorded_even_when_the_next_one_fails(
    make_app, meta_settings, fake_whatsapp, monkeypatch
):
    from bot.delivery.sending import Sender

    make_app(meta_settings.replace(send_batch_size=2))
    first_two, last_two = order_messages(2), order_messages(2, start=2)
    calls = []
    decide_all = Sender.decide_all

    def fail_the_second_time(self, batch, now):
        calls.append(batch)
        if len(calls) == 2:
            raise RuntimeError("Redis went away")
        return decide_all(self, batch, now)

    monkeypatch.setattr(Sender, "decide_all", fail_the_second_time)
    with pytest.raises(RuntimeError):
        dispatch.drain(services().sender, services().queues, "orders", budget_seconds=60)
    assert callback_counts(fake_whatsapp) == {f"dakiya:{m.id}": 1 for m in first_two}
    assert {Message.get_by_id(m.id).state for m in first_two} == {State.SENT}
    # Claimed but never sent: their lease runs out and they are claimed again.
    assert {Message.get_by_id(m.id).state for m in last_two} == {State.SENDING}


def test_an_expired_lease_with_a_stored_receipt_is_not_claimed_again(app):
    """The worker died after the provider took the message; its receipt (by callback
    data) is stored but not yet applied: sending again would be a duplicate."""
    from bot.core.models import StatusEvent

    sent, unknown = order_messages(2)
    now = utcnow()
    Message.update(state=State.SENDING, lease_until=now - timedelta(seconds=1)).where(
        Message.id.in_([sent.id, unknown.id])
    ).execute()
    StatusEvent.create(
        provider="meta",
        provider_message_id="wamid.KILLED",
        status="sent",
        callback_data=sent.callback_data,
        dedupe_key="meta:wamid.KILLED:sent",
        occurred_at=now,
    )
    assert [m.id for m in claim_due(now, 10, 60)] == [unknown.id]
    assert claim_ids([sent.id], now, 60) == []
    # ... and the sweeper does not count it as stranded either (one condition for both).
    Message.update(state=State.SENDING, lease_until=now - timedelta(seconds=1)).where(
        Message.id == unknown.id
    ).execute()
    assert find_stranded_messages(now, 30) == [(unknown.id, "orders")]


def test_rate_slots_are_taken_a_chunk_at_a_time_and_the_refused_chunks_put_back(
    make_app, meta_settings, fake_whatsapp, run_jobs
):
    from bot.delivery.ratelimit import SendRateLimiter

    make_app(meta_settings.replace(send_rate_per_second=100, rate_wait_seconds=0))
    messages = order_messages(100)
    assert SendRateLimiter(services().redis, 100).acquire(30, wait_seconds=0) == 30
    run_jobs(max_rounds=1)
    # 70 slots were free: the first chunk of 50 went, the second (50 > 20 left) waited 0 s.
    assert len(callback_counts(fake_whatsapp)) == 50
    sent = {f"dakiya:{m.id}" for m in messages[:50]}
    assert set(callback_counts(fake_whatsapp)) == sent
    waiting = Message.select().where(Message.state == State.QUEUED)
    assert {(m.reason, m.attempts) for m in waiting} == {(Reason.RATE_LIMITED, 0)}
    assert waiting.count() == 50


def test_a_batchs_crm_status_events_cost_two_inserts_not_a_query_per_message(
    make_app, meta_settings, fake_whatsapp, run_jobs, monkeypatch
):
    from bot.core.models import OutboundEvent, db

    make_app(
        meta_settings.replace(send_rate_per_second=1000, crm_webhook_urls=("http://127.0.0.1:9/",))
    )
    messages = order_messages(40)
    statements: list[str] = []
    database = type(db.obj)
    real = database.execute_sql

    def recording(self, sql, *args, **kwargs):
        statements.append(sql)
        return real(self, sql, *args, **kwargs)

    monkeypatch.setattr(database, "execute_sql", recording)
    run_jobs()

    sent = [e.payload for e in OutboundEvent.select() if e.payload["state"] == "sent"]
    assert sorted(p["message_id"] for p in sent) == [m.id for m in messages]
    inserts = [s for s in statements if s.startswith('INSERT INTO "outbound_event"')]
    assert len(inserts) == 1  # the whole batch's events in one statement
    orders = [s for s in statements if s.startswith("SELECT") and 'FROM "order"' in s]
    assert len(orders) <= 1  # and their orders read once


def test_an_expired_lease_waits_while_webhooks_kept_before_it_ran_out_are_taken_in(
    app, client, sign, take_in
):
    """The whole fleet was down: the provider's receipt for a message a dead worker sent
    is kept in the webhook inbox, unread. The message is not sent again before the
    workers have taken that delivery in (and then the receipt settles it)."""
    from tests.webhooks.test_whatsapp import meta_receipt, post_meta

    [message] = order_messages(1)
    now = utcnow()
    Message.update(state=State.SENDING, lease_until=now + timedelta(seconds=1)).where(
        Message.id == message.id
    ).execute()
    post_meta(client, sign, meta_receipt("sent", "wamid.KEPT", callback=message.callback_data))
    later = now + timedelta(seconds=5)  # the lease has run out

    assert claim_due(later, 10, 60) == []  # the kept delivery may prove the send
    take_in()
    assert claim_due(later, 10, 60) == []  # it did: the receipt reconciled the message
    assert Message.get_by_id(message.id).provider_message_id == "wamid.KEPT"
