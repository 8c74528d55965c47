"""The policy enforced at send time with real Redis counters: caps, the pair gap, the
messaging tier, duplicates, provider-side opt-outs and the adaptive slow-down."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

import pytest

from bot.core.models import ConsentEvent, Customer, Message, Reason, State, utcnow
from bot.delivery.ratelimit import SendRateLimiter, recovered_rate
from bot.extensions import services
from bot.intake.intake import take_order_event
from tests.conftest import SECRETS, load_payload
from tests.factories import marketing_message, order_event, queued_message

NOON_IST = datetime(2026, 11, 25, 6, 30)  # 12:00 in India


@pytest.fixture
def settings(settings):
    """Marketing at any hour here, so the caps are what these tests see."""
    return settings.replace(quiet_hours_marketing="", min_gap_seconds=0)


def test_daily_marketing_cap_defers_the_second_message_to_local_midnight(
    app, run_jobs, time_machine
):
    time_machine.move_to(NOON_IST, tick=False)
    first, second = marketing_message(key="a"), marketing_message(key="b")
    for m in (first, second):
        services().queues["campaigns"].enqueue("jobs.send.send_message", m.id)
    run_jobs()
    second = Message.get_by_id(second.id)
    assert Message.get_by_id(first.id).state == State.READ
    assert (second.state, second.reason) == (State.DEFERRED, Reason.CAP_DAILY)
    assert second.next_attempt_at == datetime(2026, 11, 25, 18, 30)  # midnight IST


def test_the_cap_counts_survive_losing_redis(app, run_jobs, redis_conn, time_machine):
    time_machine.move_to(NOON_IST, tick=False)
    first = marketing_message(key="a")
    services().queues["campaigns"].enqueue("jobs.send.send_message", first.id)
    run_jobs()
    redis_conn.flushdb()  # the counters are gone; the database still knows
    second = marketing_message(key="b")
    services().queues["campaigns"].enqueue("jobs.send.send_message", second.id)
    run_jobs()
    assert Message.get_by_id(second.id).reason == Reason.CAP_DAILY


def test_pair_gap_defers_a_second_message_to_the_same_customer(make_app, settings, run_jobs):
    make_app(settings.replace(min_gap_seconds=6))
    first = queued_message(event_id="a", order_id="1")
    second = queued_message(event_id="b", order_id="2")
    run_jobs(max_rounds=1)
    second = Message.get_by_id(second.id)
    assert Message.get_by_id(first.id).state in (State.SENT, State.DELIVERED, State.READ)
    assert (second.state, second.reason) == (State.DEFERRED, Reason.PAIR_RATE)


def test_full_messaging_tier_defers_new_customers_only(make_app, settings, run_jobs, redis_conn):
    make_app(settings.replace(messaging_tier="250"))
    now = time.time()
    redis_conn.zadd("dakiya:tier", {f"other-{i}": now for i in range(250)})
    message = queued_message()
    run_jobs()
    message = Message.get_by_id(message.id)
    assert (message.state, message.reason) == (State.DEFERRED, Reason.TIER_LIMIT)
    assert redis_conn.zcard("dakiya:tier") == 250


def test_same_template_and_parameters_again_is_suppressed_as_duplicate(app, run_jobs):
    first = queued_message(event_id="a", order_id="1042")
    run_jobs()
    copy = Message.create(
        **{
            f: getattr(first, f)
            for f in (
                "customer",
                "phone",
                "kind",
                "category",
                "queue",
                "template_name",
                "language",
                "params",
            )
        },
        dedupe_key="manual-resend",
    )
    services().queues["orders"].enqueue("jobs.send.send_message", copy.id)
    run_jobs()
    copy = Message.get_by_id(copy.id)
    assert (copy.state, copy.reason) == (State.SUPPRESSED, Reason.DUPLICATE)


def test_meta_marketing_cap_error_defers_a_day_and_is_not_an_opt_out(
    make_app, meta_settings, fake_whatsapp, run_jobs
):
    make_app(meta_settings.replace(quiet_hours_marketing="", min_gap_seconds=0))
    fake_whatsapp.script(
        (400, {"error": {"message": "healthy ecosystem engagement", "code": 131049}})
    )
    message = marketing_message()
    services().queues["campaigns"].enqueue("jobs.send.send_message", message.id)
    run_jobs()
    message = Message.get_by_id(message.id)
    assert (message.state, message.reason) == (State.QUEUED, Reason.PROVIDER_MARKETING_LIMIT)
    assert message.next_attempt_at > utcnow() + timedelta(hours=23)
    assert Customer.get().marketing_opt_in is True


def test_meta_131050_records_a_marketing_opt_out(make_app, meta_settings, fake_whatsapp, run_jobs):
    make_app(meta_settings.replace(quiet_hours_marketing="", min_gap_seconds=0))
    fake_whatsapp.script((400, {"error": {"message": "stopped marketing", "code": 131050}}))
    message = marketing_message()
    services().queues["campaigns"].enqueue("jobs.send.send_message", message.id)
    run_jobs()
    assert Message.get_by_id(message.id).state == State.FAILED
    assert Customer.get().marketing_opt_in is False
    [event] = ConsentEvent.select()
    assert (event.category, event.action, event.source) == (
        "marketing",
        "opt_out",
        "provider_error",
    )


def test_user_preferences_webhook_is_recorded_in_the_ledger(client, sign, run_jobs):
    Customer.create(phone="+919812345678", marketing_opt_in=True)
    raw = json.dumps(load_payload("meta/other")["user_preferences"]).encode()
    signature = "sha256=" + sign(SECRETS["meta_app_secret"], raw)
    response = client.post(
        "/webhooks/whatsapp/meta", data=raw, headers={"X-Hub-Signature-256": signature}
    )
    run_jobs()
    assert response.status_code == 200
    assert Customer.get().marketing_opt_in is False
    event = ConsentEvent.get()
    assert (event.category, event.action, event.source) == (
        "marketing",
        "opt_out",
        "meta_preferences",
    )
    assert event.evidence["detail"] == "User requested to stop marketing messages"


def test_stop_promotions_button_stops_marketing_only(app, client, sign, run_jobs):
    body = load_payload("meta/messages")["button"]
    message = body["entry"][0]["changes"][0]["value"]["messages"][0]
    message["button"] = {"payload": "Stop promotions", "text": "Stop promotions"}
    message["timestamp"] = str(int(time.time()))
    Customer.create(phone="+919812345678", marketing_opt_in=True)
    raw = json.dumps(body).encode()
    client.post(
        "/webhooks/whatsapp/meta",
        data=raw,
        headers={"X-Hub-Signature-256": "sha256=" + sign(SECRETS["meta_app_secret"], raw)},
    )
    run_jobs()
    customer = Customer.get()
    assert (customer.marketing_opt_in, customer.opted_out) == (False, False)
    assert ConsentEvent.get().source == "button"
    assert not Message.select().where(Message.text.is_null(False)).exists()  # WhatsApp confirms it


def test_shopify_checkout_consent_is_recorded(client, sign):
    payload = load_payload("shopify/orders_create_cod")
    payload["customer"]["sms_marketing_consent"] = {
        "state": "subscribed",
        "opt_in_level": "single_opt_in",
    }
    raw = json.dumps(payload).encode()
    client.post(
        "/webhooks/orders/shopify",
        data=raw,
        headers={
            "X-Shopify-Hmac-Sha256": sign(SECRETS["shopify_webhook_secret"], raw, "base64"),
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Webhook-Id": "w-consent",
        },
    )
    customer = Customer.get()
    assert customer.marketing_opt_in is True
    event = ConsentEvent.get()
    assert (event.source, event.action, event.evidence["order_event"]) == (
        "shopify",
        "opt_in",
        "shopify:w-consent",
    )


@pytest.mark.parametrize(
    ("floor", "elapsed", "expected"),
    [(40, 0, 40), (40, 30, 80), (40, 60, 80), (1, 30, 2), (10, 90, 80), (0.5, 0, 1)],
)
def test_throttled_rate_doubles_back_to_the_configured_rate(floor, elapsed, expected):
    assert recovered_rate(floor, 1000.0, 1000.0 + elapsed, 80, 30.0) == expected


def test_slow_down_is_shared_by_every_worker(redis_conn):
    one, two = SendRateLimiter(redis_conn, 80), SendRateLimiter(redis_conn, 80)
    assert one.slow_down(now=1000.0) == 40
    assert two.current_rate(now=1000.0) == 40
    assert two.slow_down(now=1000.0) == 20
    assert one.current_rate(now=1060.0) == 80


def test_provider_throttling_slows_every_sender(
    make_app, meta_settings, fake_whatsapp, run_jobs, redis_conn
):
    make_app(meta_settings)
    fake_whatsapp.script((429, {"error": {"message": "Rate limit hit", "code": 130429}}))
    queued_message()
    run_jobs()
    assert SendRateLimiter(redis_conn, 80).current_rate() < 80


def test_a_pair_rate_limit_slows_that_customer_only_not_every_sender(
    make_app, meta_settings, fake_whatsapp, run_jobs, redis_conn
):
    make_app(meta_settings)
    fake_whatsapp.script((429, {"error": {"message": "pair rate limit hit", "code": 131056}}))
    message = queued_message()
    run_jobs()
    assert Message.get_by_id(message.id).error_code == "131056"
    assert SendRateLimiter(redis_conn, 80).current_rate() == 80


def test_meta_131047_closes_the_service_window(make_app, meta_settings, fake_whatsapp, run_jobs):
    from bot.core.models import Category

    make_app(meta_settings)
    customer = Customer.create(phone="+919812345678", last_inbound_at=utcnow())
    fake_whatsapp.script((400, {"error": {"message": "Re-engagement message", "code": 131047}}))
    reply = Message.create(
        customer=customer,
        phone=customer.phone,
        dedupe_key="r1",
        kind="reply",
        category=Category.SERVICE,
        text="Your order is on its way.",
    )
    services().queues["orders"].enqueue("jobs.send.send_message", reply.id)
    run_jobs()
    assert Message.get_by_id(reply.id).error_code == "131047"
    assert Customer.get().last_inbound_at is None  # further free-form text is suppressed


def test_an_erased_number_is_never_messaged_again_even_for_a_new_order(app, client, run_jobs):
    from bot.policy.privacy import erase_customer

    queued_message(event_id="a", order_id="1")
    run_jobs()
    erase_customer("+919812345678", services().settings.suppression_salt, "admin", utcnow())
    # The shop sends a new order: acknowledged and dropped, never stored or sent.
    accepted = take_order_event(services(), order_event(event_id="b", order_id="2"), utcnow())
    run_jobs()
    assert (accepted.dropped, accepted.message_ids) == (Reason.ERASED, [])
    assert not Message.select().exists()  # the erased one went with the erasure
    assert not Customer.select().exists()
