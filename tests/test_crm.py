"""CRM integration: outbound webhooks (signed, retried, every attempt logged) for
message states, consent changes and customer messages; bulk customer upsert."""

from __future__ import annotations

import hmac
import json
from datetime import datetime, timedelta

import pytest
import time_machine

from bot.campaigns import campaigns
from bot.core.models import (
    Campaign,
    Customer,
    Message,
    OutboundEvent,
    State,
    WebhookDelivery,
    utcnow,
    write_transaction,
)
from bot.core.signing import sign_hmac
from bot.delivery import statuses
from bot.delivery.providers.base import DeliveryStatus, StatusUpdate
from bot.delivery.providers.base import InboundMessage as Inbound
from bot.extensions import services
from bot.intake.intake import store_inbound
from bot.integrations import crm
from bot.policy import consent
from jobs.sweep import sweep_once
from tests.conftest import ADMIN
from tests.factories import queued_message

CRM_SECRET = "test-crm-secret"
PHONE = "+919812345678"


@pytest.fixture
def receiver():
    from tests.fakes.crm_receiver import CrmReceiver

    server = CrmReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def crm_app(make_app, settings, receiver):
    return make_app(
        settings.replace(crm_webhook_urls=(receiver.url,), crm_webhook_secret=CRM_SECRET)
    )


def opt_out(phone: str = PHONE) -> None:
    with write_transaction():
        customer, _ = Customer.get_or_create(phone=phone, defaults={"timezone": "Asia/Kolkata"})
        consent.record_opt_out(customer, consent.ALL, "keyword", {"text": "STOP"}, utcnow())


def attempts() -> list[WebhookDelivery]:
    return list(WebhookDelivery.select().order_by(WebhookDelivery.id))


def test_delivery_is_signed_over_the_exact_raw_body(crm_app, receiver, run_jobs):
    opt_out()
    run_jobs()
    [got] = receiver.received
    expected = "sha256=" + hmac.new(CRM_SECRET.encode(), got.body, "sha256").hexdigest()
    assert got.headers["X-Dakiya-Signature"] == expected
    event = OutboundEvent.get()
    assert got.headers["X-Dakiya-Event-Id"] == str(event.id)
    assert got.headers["X-Dakiya-Delivery-Attempt"] == "1"
    document = json.loads(got.body)
    assert document["type"] == "consent.changed"
    assert document["data"] | {"at": None} == {
        "phone": PHONE,
        "category": "all",
        "action": "opt_out",
        "source": "keyword",
        "at": None,
    }
    [delivery] = attempts()
    assert (delivery.state, delivery.status_code) == ("delivered", 200)
    assert delivery.delivered_at is not None


def test_a_500_is_retried_later_with_backoff_and_each_attempt_logged(crm_app, receiver, run_jobs):
    receiver.script(500)
    with time_machine.travel(utcnow(), tick=False) as clock:
        opt_out()
        run_jobs()
        first, retry = attempts()
        assert (first.state, first.status_code, first.attempt) == ("retried", 500, 1)
        assert (retry.state, retry.attempt) == ("pending", 2)
        # half fixed, half jitter: between base/2 and base (RETRY_BASE_SECONDS=30)
        wait = retry.next_attempt_at - first.attempted_at
        assert timedelta(seconds=15) <= wait <= timedelta(seconds=30)
        assert run_jobs() == 0  # not due yet
        clock.shift(timedelta(seconds=31))
        run_jobs()
    first, retry = attempts()
    assert (retry.state, retry.status_code) == ("delivered", 200)
    bodies = [r.body for r in receiver.received]
    assert len(bodies) == 2 and bodies[0] == bodies[1]  # the same event, signed the same
    assert receiver.received[1].headers["X-Dakiya-Delivery-Attempt"] == "2"


def test_a_400_is_given_up_at_once(crm_app, receiver, run_jobs):
    receiver.script(400)
    opt_out()
    run_jobs()
    [only] = attempts()
    assert (only.state, only.status_code) == ("failed", 400)
    assert len(receiver.received) == 1


def test_gives_up_after_eight_attempts(crm_app, receiver, run_jobs):
    receiver.script(*[503] * 8)
    with time_machine.travel(utcnow(), tick=False) as clock:
        opt_out()
        for _ in range(8):
            run_jobs()
            clock.shift(timedelta(hours=2))
    rows = attempts()
    assert [r.attempt for r in rows] == list(range(1, 9))
    assert [r.state for r in rows] == ["retried"] * 7 + ["failed"]


def test_a_connection_error_is_retried(crm_app):
    # Nothing listens on this port: a connection error, like a timeout, is retried.
    with write_transaction():
        event = OutboundEvent.create(type=crm.CONSENT_CHANGED, payload={}, created_at=utcnow())
        delivery = WebhookDelivery.create(
            event=event, url="http://127.0.0.1:9/nothing", next_attempt_at=utcnow()
        )
    crm.deliver_once(services().settings, services().queues, delivery.id, utcnow())
    first, retry = attempts()
    assert first.state == "retried" and first.status_code is None and first.error
    assert retry.attempt == 2


def test_status_change_opt_out_and_inbound_each_produce_one_event(crm_app, run_jobs):
    message = queued_message()
    run_jobs()  # the sandbox sends it and reports delivered, then read
    states = [e.payload["state"] for e in OutboundEvent.select() if e.type == crm.MESSAGE_STATUS]
    # one event per change: sent, then delivered and read, or read alone when it overtook
    assert states in (["sent", "delivered", "read"], ["sent", "read"])
    now = utcnow()
    provider_id = message.__class__.get_by_id(message.id).provider_message_id
    stale = StatusUpdate("sandbox", provider_id, DeliveryStatus.SENT, now)
    for receipt in statuses.record_updates([stale], now):
        statuses.apply_status_event(receipt, now)  # read already: changes nothing
    opt_out()
    opt_out()  # already out: no change, no event
    inbound = Inbound("meta", "wamid.IN1", PHONE, "text", now, text="hi")
    with write_transaction():
        store_inbound([inbound, inbound], now, salt="")
    events = list(OutboundEvent.select().order_by(OutboundEvent.id))
    types = [e.type for e in events]
    assert types.count(crm.MESSAGE_STATUS) == len(states)  # a stale receipt: no event
    assert types.count(crm.CONSENT_CHANGED) == 1
    assert types.count(crm.MESSAGE_RECEIVED) == 1
    status = events[0].payload
    assert (status["phone"], status["order"]["id"]) == (PHONE, "1042")
    assert events[-1].payload["text"] == "hi"


def status_events() -> dict[int, list[dict]]:
    """The `message.status` payloads recorded, by message id, in order."""
    by_message: dict[int, list[dict]] = {}
    for event in OutboundEvent.select().order_by(OutboundEvent.id):
        if event.type == crm.MESSAGE_STATUS:
            by_message.setdefault(event.payload["message_id"], []).append(event.payload)
    return by_message


def test_sent_failed_and_suppressed_messages_each_produce_a_status_event(crm_app, run_jobs):
    sent = queued_message(event_id="e-sent", order_id="1")
    failed = queued_message(phone="+919812340000", event_id="e-failed", order_id="2")
    opt_out("+919876543210")
    suppressed = queued_message(phone="+919876543210", event_id="e-suppressed", order_id="3")

    run_jobs()

    events = status_events()
    first = events[sent.id][0]
    assert (first["state"], first["reason"], first["error"]) == ("sent", None, None)
    assert first["order"]["id"] == "1" and first["phone"] == PHONE
    assert [e["state"] for e in events[sent.id]][-1] == "read"
    [fail] = events[failed.id]
    assert (fail["state"], fail["reason"]) == ("failed", "provider_rejected")
    assert fail["error"]["code"] == "131026"
    assert "not on WhatsApp" in fail["error"]["text"]
    assert fail["order"]["id"] == "2"
    [suppression] = events[suppressed.id]
    assert (suppression["state"], suppression["reason"], suppression["error"]) == (
        "suppressed",
        "opted_out",
        None,
    )


def test_an_admins_cancel_produces_a_suppressed_status_event(crm_app):
    message = queued_message()
    client = crm_app.test_client()

    response = client.post(f"/admin/api/messages/{message.id}/cancel", headers=ADMIN)

    assert response.status_code == 200
    [event] = status_events()[message.id]
    assert (event["state"], event["reason"]) == ("suppressed", "cancelled")


def test_no_urls_no_events(app):
    opt_out()
    assert OutboundEvent.select().count() == 0


def test_sweeper_re_enqueues_a_delivery_whose_job_was_lost(crm_app, receiver, redis_conn, run_jobs):
    opt_out()
    redis_conn.flushdb()  # the job is lost
    later = utcnow() + timedelta(minutes=5)
    assert sweep_once(services(), later)["crm_webhooks_requeued"] == 1
    run_jobs()
    assert len(receiver.received) == 1


def item(phone: str, **fields) -> dict:
    return {"phone": phone, **fields}


def test_bulk_upsert_is_idempotent_and_reports_bad_items(client):
    body = {
        "customers": [
            item("+919812345678", name="Asha", language="hi", tags=["vip", "cod"]),
            item("98765 43210", country="IN", timezone="Asia/Kolkata"),
            item("not a phone"),
            item("+919811111111", language="xx-nope"),
        ]
    }
    first = client.put("/admin/api/customers/bulk", json=body, headers=ADMIN)
    assert first.status_code == 200, first.get_json()
    report = first.get_json()
    assert (report["created"], report["updated"], report["upserted"]) == (2, 0, 2)
    assert [(r["index"], list(r["errors"])) for r in report["rejected"]] == [
        (2, ["phone"]),
        (3, ["language"]),
    ]
    second = client.put("/admin/api/customers/bulk", json=body, headers=ADMIN).get_json()
    assert (second["created"], second["updated"], second["unchanged"]) == (0, 0, 2)
    assert second["rejected"] == report["rejected"]
    assert Customer.select().count() == 2
    asha = Customer.get(Customer.phone == "+919812345678")
    assert (asha.name, asha.language, asha.tags) == ("Asha", "hi", ["vip", "cod"])
    assert Customer.get(Customer.phone == "+919876543210").timezone == "Asia/Kolkata"


def test_bulk_upsert_refuses_more_than_a_thousand(client):
    body = {"customers": [item(f"+9198{i:08d}") for i in range(1001)]}
    response = client.put("/admin/api/customers/bulk", json=body, headers=ADMIN)
    assert response.status_code == 400


def test_signature_helper_is_the_shared_one():
    assert sign_hmac("k", b"x") == hmac.new(b"k", b"x", "sha256").hexdigest()


def test_messages_created_already_suppressed_produce_a_suppressed_event(crm_app):
    no_number = queued_message(phone="not a number", event_id="e-bad", order_id="7")
    Customer.create(phone="+919812340001", timezone="Asia/Kolkata", marketing_opt_in=True)
    campaign = Campaign.create(
        name="Diwali", template="diwali_sale", languages=["en"], params=["customer_name"],
        fallbacks={}, created_by="tests",
    )  # fmt: skip
    with time_machine.travel(datetime(2030, 1, 10, 6, 0), tick=False):
        campaigns.launch(campaign, services().queues, utcnow())
        campaigns.run_batch(campaign.id, services().queues, "en", "Asia/Kolkata", utcnow(), 500)

    events = status_events()
    [invalid] = events[no_number.id]
    assert (invalid["state"], invalid["reason"], invalid["order"]["id"]) == (
        "suppressed",
        "invalid_phone",
        "7",
    )
    [message] = Message.select().where(Message.campaign == campaign.id)
    [missing] = events[message.id]
    assert (missing["state"], missing["reason"]) == ("suppressed", "missing_parameter")


def test_a_campaigns_cancel_produces_a_suppressed_event_per_waiting_message(crm_app):
    for phone in ("+919812340001", "+919812340002"):
        Customer.create(phone=phone, timezone="Asia/Kolkata", name="Asha", marketing_opt_in=True)
    campaign = Campaign.create(
        name="Diwali", template="diwali_sale", languages=["en"], params=["customer_name"],
        created_by="tests",
    )  # fmt: skip
    with time_machine.travel(datetime(2030, 1, 10, 6, 0), tick=False):
        campaigns.launch(campaign, services().queues, utcnow())
        campaigns.run_batch(campaign.id, services().queues, "en", "Asia/Kolkata", utcnow(), 500)
        campaigns.cancel(Campaign.get_by_id(campaign.id), utcnow())

    ids = [m.id for m in Message.select().where(Message.campaign == campaign.id)]
    events = status_events()
    assert len(ids) == 2
    for message_id in ids:
        [event] = events[message_id]
        assert (event["state"], event["reason"], event["error"]) == (
            "suppressed",
            "cancelled",
            None,
        )


def test_a_failure_receipt_carries_its_reason_and_error(crm_app):
    message = queued_message()
    Message.update(state=State.SENT, provider="meta", provider_message_id="wamid.F1").where(
        Message.id == message.id
    ).execute()
    now = utcnow()
    receipt = StatusUpdate(
        "meta", "wamid.F1", DeliveryStatus.FAILED, now, error_code="131000", error_text="boom"
    )
    for event_id in statuses.record_updates([receipt], now):
        statuses.apply_status_event(event_id, now)

    [event] = status_events()[message.id]
    assert (event["state"], event["reason"]) == ("failed", "delivery_failed")
    assert event["error"] == {"code": "131000", "text": "boom"}
