"""The lean webhook intake (issue 19, item 1): a signed WhatsApp delivery is kept raw by
one INSERT and answered; the workers take the kept deliveries in by the batch, customer
messages ahead of receipts. Nothing acknowledged is lost, a redelivery is a no-op, a
poison delivery is set aside, an outage or a lost kick only delays."""

from __future__ import annotations

import copy
import json
import time

import pytest

from bot.core.models import (
    ConsentEvent,
    Customer,
    InboundMessage,
    InboxEntry,
    Message,
    SpoolDeadLetter,
    State,
    StatusEvent,
    utcnow,
)
from bot.extensions import services
from bot.intake import inbox
from bot.intake.inbox import Lane
from tests.conftest import ADMIN, load_payload
from tests.factories import queued_message
from tests.webhooks.test_whatsapp import meta_receipt, post_meta, sent_message

ASHA = "919812345678"


def sent(n: int) -> Message:
    """A message Meta accepted as wamid.<n>, to an order of its own."""
    message = queued_message(event_id=f"evt-{n}", order_id=str(2000 + n))
    Message.update(state=State.SENT, provider="meta", provider_message_id=f"wamid.{n}").where(
        Message.id == message.id
    ).execute()
    return Message.get_by_id(message.id)


def stop_message(wamid: str = "wamid.STOP1", text: str = "STOP") -> dict:
    body = copy.deepcopy(load_payload("meta/messages")["text"])
    message = body["entry"][0]["changes"][0]["value"]["messages"][0]
    message.update(id=wamid, text={"body": text}, timestamp=str(int(time.time())))
    return body


def test_a_receipt_is_kept_by_its_request_and_applied_by_a_worker(client, sign, take_in):
    message = sent_message("wamid.K1")

    response = post_meta(client, sign, meta_receipt("delivered", "wamid.K1"))

    assert response.status_code == 200 and response.get_json() == {"accepted": True}
    [entry] = InboxEntry.select()
    assert (entry.kind, entry.lane) == ("whatsapp:meta", Lane.RECEIPTS)
    assert StatusEvent.select().count() == 0  # nothing parsed in the request
    assert Message.get_by_id(message.id).state == State.SENT

    assert take_in() == 1
    assert Message.get_by_id(message.id).state == State.DELIVERED
    assert InboxEntry.select().count() == 0


def test_a_customer_message_goes_in_the_inbound_lane_and_is_answered(client, sign, take_in):
    post_meta(client, sign, stop_message())
    mixed = stop_message("wamid.STOP2", "hello")
    mixed["entry"] += meta_receipt("read", "wamid.R1")["entry"]
    post_meta(client, sign, mixed)  # a receipt beside a message: the message's lane

    assert [e.lane for e in InboxEntry.select().order_by(InboxEntry.id)] == [
        Lane.INBOUND,
        Lane.INBOUND,
    ]
    take_in()
    assert Customer.get(Customer.phone == "+" + ASHA).opted_out
    assert InboundMessage.select().count() == 2
    assert StatusEvent.get().provider_message_id == "wamid.R1"
    assert Message.select().where(Message.text.is_null(False)).exists()  # answered


def test_receipts_posted_one_by_one_are_taken_in_together(client, sign):
    messages = [sent(n) for n in range(30)]
    for message in messages:
        for status in ("sent", "delivered", "read"):
            post_meta(client, sign, meta_receipt(status, message.provider_message_id))

    taken = inbox.take_batch(services(), Lane.RECEIPTS, utcnow())

    assert taken.entries == 90 and len(taken.receipt_ids) == 90  # one transaction
    assert InboxEntry.select().count() == 0
    from jobs.inbox import apply_receipts

    assert apply_receipts(taken.receipt_ids) == 30
    assert {Message.get_by_id(m.id).state for m in messages} == {State.READ}


def test_a_redelivered_receipt_is_kept_twice_and_stored_once(client, sign, take_in):
    message = sent_message("wamid.D1")
    body = meta_receipt("delivered", "wamid.D1")
    post_meta(client, sign, body)
    take_in()
    post_meta(client, sign, body)  # Meta redelivers after a timeout
    take_in()
    assert StatusEvent.select().count() == 1
    assert Message.get_by_id(message.id).state == State.DELIVERED


def test_a_poison_entry_goes_to_the_dead_letters_and_the_rest_is_taken_in(client, sign, take_in):
    message = sent_message("wamid.P1")
    post_meta(client, sign, meta_receipt("sent", "wamid.P0"))
    # Kept by an older version for a provider this one no longer reads.
    InboxEntry.create(kind="whatsapp:retired", lane=Lane.RECEIPTS, body=b"{}", received_at=utcnow())
    post_meta(client, sign, meta_receipt("delivered", "wamid.P1"))

    take_in()

    assert Message.get_by_id(message.id).state == State.DELIVERED
    assert InboxEntry.select().count() == 0
    [letter] = SpoolDeadLetter.select()
    assert (letter.kind, bytes(letter.body)) == ("whatsapp:retired", b"{}")
    assert "retired" in letter.error
    listed = client.get("/admin/api/spool/dead-letters", headers=ADMIN).get_json()
    assert [item["kind"] for item in listed["items"]] == ["whatsapp:retired"]


def test_an_outage_while_taking_in_leaves_the_entries_for_later(
    client, sign, take_in, database_down
):
    database_down.end()
    message = sent_message("wamid.O1")
    post_meta(client, sign, meta_receipt("read", "wamid.O1"))
    database_down.__init__()  # the database goes away before a worker takes it in
    with pytest.raises(Exception) as raised:
        inbox.take_batch(services(), Lane.RECEIPTS, utcnow())
    assert "connect" in str(raised.value).lower()
    database_down.end()

    assert InboxEntry.select().count() == 1  # still there
    take_in()
    assert Message.get_by_id(message.id).state == State.READ


def test_the_webhook_answers_503_when_the_database_cannot_keep_it(client, sign, database_down):
    response = post_meta(client, sign, meta_receipt("sent", "wamid.X1"))
    assert response.status_code == 503  # Meta redelivers
    database_down.end()
    assert InboxEntry.select().count() == 0


def test_a_lost_kick_is_made_good_by_the_sweep(client, sign, run_jobs, redis_conn, time_machine):
    from datetime import timedelta

    from jobs.sweep import sweep_once

    time_machine.move_to(utcnow(), tick=True)
    message = sent_message("wamid.L1")
    post_meta(client, sign, meta_receipt("delivered", "wamid.L1"))
    redis_conn.flushdb()  # the drain job and its trigger are gone
    assert sweep_once(services(), utcnow())["inbox_lanes_kicked"] == []  # not yet overdue
    time_machine.shift(timedelta(minutes=2))

    assert sweep_once(services(), utcnow())["inbox_lanes_kicked"] == ["receipts"]
    run_jobs()
    assert Message.get_by_id(message.id).state == State.DELIVERED


def test_a_receipt_drain_steps_aside_for_a_waiting_customer_message(
    client, sign, run_jobs, monkeypatch
):
    from jobs.inbox import take_receipts

    monkeypatch.setattr(inbox, "BATCH_SIZE", 2)
    for n in range(6):
        sent(n)
        post_meta(client, sign, meta_receipt("delivered", f"wamid.{n}"))
    post_meta(client, sign, stop_message())  # kicks the inbound drain, on the orders queue

    assert take_receipts() == 2  # one batch, then it hands over
    assert InboxEntry.select().where(InboxEntry.lane == Lane.RECEIPTS).count() == 4
    assert not ConsentEvent.select().exists()

    run_jobs()  # the orders queue (the STOP) first, then the receipts carry on
    assert Customer.get(Customer.phone == "+" + ASHA).opted_out
    assert InboxEntry.select().count() == 0
    assert Message.select().where(Message.state == State.DELIVERED).count() == 6


def test_interakt_receipts_and_messages_are_laned_like_meta_ones(client, sign):
    from tests.webhooks.test_whatsapp import post_interakt

    samples = load_payload("interakt/webhooks")
    post_interakt(client, sign, samples["api_delivered"])
    post_interakt(client, sign, samples["received_text"])
    lanes = [e.lane for e in InboxEntry.select().order_by(InboxEntry.id)]
    assert lanes == [Lane.RECEIPTS, Lane.INBOUND]


@pytest.mark.parametrize(
    "body",
    [
        {"object": "whatsapp_business_account", "entry": [{"changes": 5}]},
        {"object": "whatsapp_business_account", "entry": [{"changes": []}]},
        {"object": "whatsapp_business_account", "entry": "x"},
        [1, 2],
    ],
)
def test_a_body_that_is_not_plainly_receipts_takes_the_inbound_lane(client, sign, body):
    assert post_meta(client, sign, json.dumps(body).encode()).status_code == 200
    assert InboxEntry.get().lane == Lane.INBOUND


def test_a_lingering_receipt_drain_takes_receipts_that_come_meanwhile_in_the_same_job(
    client, sign, redis_conn
):
    from rq import Queue

    from jobs.inbox import apply_receipts

    statuses = Queue("statuses", connection=redis_conn)
    first, second = sent(1), sent(2)
    post_meta(client, sign, meta_receipt("delivered", "wamid.1"))
    assert statuses.count == 1  # the drain job the first receipt kicked
    posted = []

    def apply_and_receive(receipt_ids: list[int]) -> int:
        if not posted:  # a receipt arrives while the drain works
            posted.append(post_meta(client, sign, meta_receipt("read", "wamid.2")))
        return apply_receipts(receipt_ids)

    drained = inbox.drain(
        services(),
        Lane.RECEIPTS,
        20.0,
        apply=apply_and_receive,
        answer=lambda ids: 0,
        linger_seconds=0.2,
    )

    assert drained.entries == 2 and drained.receipts_applied == 2
    assert Message.get_by_id(first.id).state == State.DELIVERED
    assert Message.get_by_id(second.id).state == State.READ
    assert statuses.count == 1  # the second receipt kicked no job of its own
    assert not redis_conn.exists(inbox.KICK_KEY.format(Lane.RECEIPTS))  # ended: a new one kicks


def test_a_receipt_drain_hands_over_when_an_order_job_waits(client, sign, redis_conn):
    from rq import Queue

    from jobs.inbox import take_receipts

    for n in range(3):
        sent(n)
        post_meta(client, sign, meta_receipt("delivered", f"wamid.{n}"))
    Queue("orders", connection=redis_conn).enqueue("jobs.write_back.write_back_due")

    assert take_receipts() == 3  # a batch, then it hands over at once
    assert redis_conn.exists(inbox.KICK_KEY.format(Lane.RECEIPTS))  # a fresh drain is due
    assert Queue("statuses", connection=redis_conn).count == 2


def test_receipts_in_quick_succession_cost_one_kick_and_are_all_taken_in(
    make_app, settings, sign, redis_conn, monkeypatch
):
    from rq import Queue

    from jobs.inbox import take_receipts

    monkeypatch.setattr(inbox, "_seen_pending", {})  # this process saw nothing yet

    app = make_app(settings.replace(receipt_drain_linger_seconds=0.2))
    client = app.test_client()
    statuses = Queue("statuses", connection=redis_conn)
    first, second = sent(1), sent(2)
    post_meta(client, sign, meta_receipt("delivered", "wamid.1"))
    assert statuses.count == 1
    # The drain clears its trigger as it ends; this process saw it pending a moment ago,
    # so its next receipt kicks nothing (no Redis round trip)...
    redis_conn.delete(inbox.KICK_KEY.format(Lane.RECEIPTS))
    post_meta(client, sign, meta_receipt("read", "wamid.2"))
    assert statuses.count == 1 and not redis_conn.exists(inbox.KICK_KEY.format(Lane.RECEIPTS))

    # ...and the drain, which waits that long after clearing before its last look,
    # takes both.
    assert take_receipts() == 2
    assert Message.get_by_id(first.id).state == State.DELIVERED
    assert Message.get_by_id(second.id).state == State.READ


def test_metrics_show_what_waits_in_each_lane(client, sign, take_in, time_machine):
    from datetime import timedelta

    def scrape(client, auth: dict) -> str:
        return client.get("/metrics", headers=auth).get_data(as_text=True)

    time_machine.move_to(utcnow(), tick=False)
    post_meta(client, sign, meta_receipt("sent", "wamid.M1"))
    post_meta(client, sign, meta_receipt("read", "wamid.M1"))
    time_machine.shift(timedelta(seconds=30))

    text = scrape(client, ADMIN)
    assert 'dakiya_inbox_entries{lane="receipts"} 2.0' in text
    assert 'dakiya_inbox_entries{lane="inbound"} 0.0' in text
    assert 'dakiya_inbox_oldest_seconds{lane="receipts"} 30.0' in text
    take_in()
    assert 'dakiya_inbox_entries{lane="receipts"} 0.0' in scrape(client, ADMIN)
