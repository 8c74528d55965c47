"""The order webhooks, end to end: signed event in, one template message out."""

from __future__ import annotations

import json

import pytest

from bot.core.models import Customer, Message, Order, OrderEvent, Reason, State, StatusEvent
from bot.delivery.providers.sandbox import recorded
from tests.conftest import SECRETS, load_payload

SECRET = SECRETS["order_webhook_secret"]


def post_generic(client, sign, body, secret=SECRET, **headers):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers.setdefault("X-Signature-256", "sha256=" + sign(secret, raw))
    return client.post(
        "/webhooks/orders", data=raw, headers=headers, content_type="application/json"
    )


def stored_counts() -> tuple[int, int, int, int]:
    return (
        OrderEvent.select().count(),
        Message.select().count(),
        Order.select().count(),
        Customer.select().count(),
    )


def test_signed_event_sends_one_template_and_plays_back_receipts(
    client, sign, run_jobs, redis_conn
):
    response = post_generic(client, sign, load_payload("generic/order_shipped"))
    assert response.status_code == 202
    body = response.get_json()
    assert body["duplicate"] is False and len(body["message_ids"]) == 1
    message = Message.get_by_id(body["message_ids"][0])
    assert (message.state, message.phone, message.template_name, message.language) == (
        State.QUEUED,
        "+919812345678",
        "order_shipped",
        "hi",
    )
    assert message.params["body"] == [
        "Asha",
        "4750",
        "Delhivery",
        "https://www.delhivery.com/track/package/1490211882791",
    ]

    run_jobs()

    message = Message.get_by_id(message.id)
    assert message.state == State.READ
    assert message.sent_at and message.delivered_at and message.read_at
    assert sorted(e.status for e in StatusEvent.select()) == ["delivered", "read", "sent"]
    [sent] = recorded(redis_conn)
    assert sent["to"] == "+919812345678" and sent["template"]["name"] == "order_shipped"
    assert sent["callback_data"] == f"dakiya:{message.id}"


def test_repeated_event_returns_200_with_the_same_ids_and_creates_nothing(client, sign):
    event = load_payload("generic/order_shipped")
    first = post_generic(client, sign, event).get_json()
    counts = stored_counts()
    again = post_generic(client, sign, event)
    assert again.status_code == 200
    assert again.get_json() == {**first, "duplicate": True}
    assert stored_counts() == counts


def test_total_is_formatted_for_the_customers_language(client, sign):
    event = load_payload("generic/order_shipped") | {"event": "confirmed"}
    event["customer"]["language"] = "en"
    ids = post_generic(client, sign, event).get_json()["message_ids"]
    assert Message.get_by_id(ids[0]).params["body"][2] == "₹1,299.00"


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Signature-256": "sha256=" + "0" * 64},
        {"X-Signature-256": ""},
        {"X-Signature-256": "not-a-signature"},
    ],
)
def test_bad_signature_is_401_and_stores_nothing(client, sign, headers):
    response = post_generic(client, sign, load_payload("generic/order_shipped"), **headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "bad_signature"
    assert stored_counts() == (0, 0, 0, 0)


def test_missing_signature_is_401(client):
    raw = json.dumps(load_payload("generic/order_shipped")).encode()
    response = client.post("/webhooks/orders", data=raw, content_type="application/json")
    assert response.status_code == 401


def test_replayed_signature_on_an_altered_body_is_401(client, sign):
    raw = json.dumps(load_payload("generic/order_shipped")).encode()
    signature = "sha256=" + sign(SECRET, raw)
    tampered = raw.replace(b"098123 45678", b"099999 99999")
    response = client.post(
        "/webhooks/orders", data=tampered, headers={"X-Signature-256": signature}
    )
    assert response.status_code == 401
    assert stored_counts() == (0, 0, 0, 0)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
        (
            json.dumps(
                {
                    "event_id": "e1",
                    "event": "teleported",
                    "order": {"id": "1"},
                    "customer": {"phone": "+919812345678"},
                }
            ).encode(),
            "event",
        ),
        (
            json.dumps(
                {
                    "event_id": 12,
                    "event": "shipped",
                    "order": {"id": "1"},
                    "customer": {"phone": "+919812345678"},
                }
            ).encode(),
            "event_id",
        ),
        (
            json.dumps(
                {
                    "event_id": "e1",
                    "event": "shipped",
                    "order": {"id": "1", "total": "lots"},
                    "customer": {"phone": "+919812345678"},
                }
            ).encode(),
            "order.total",
        ),
        (
            json.dumps({"event_id": "e1", "event": "shipped", "order": {"id": "1"}}).encode(),
            "customer",
        ),
    ],
)
def test_invalid_payload_is_400_naming_the_field_and_stores_nothing(client, sign, raw, field):
    response = post_generic(client, sign, raw)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_payload"
    assert field in error["fields"]
    assert stored_counts() == (0, 0, 0, 0)


def test_huge_body_is_413_and_stores_nothing(client, sign):
    event = load_payload("generic/order_shipped")
    event["customer"]["name"] = "A" * (2 * 1024 * 1024)
    response = post_generic(client, sign, event)
    assert response.status_code == 413
    assert stored_counts() == (0, 0, 0, 0)


def test_unknown_source_is_404(client, sign):
    response = client.post("/webhooks/orders/magento", data=b"{}")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "unknown_source"


def test_disabled_source_is_404(make_app, settings, sign):
    client = make_app(settings.replace(order_sources=("generic",))).test_client()
    assert client.post("/webhooks/orders/shopify", data=b"{}").status_code == 404


@pytest.mark.parametrize("phone", ["12345", "not a phone", "+91 00000"])
def test_unusable_phone_is_recorded_as_suppressed_not_a_crash(client, sign, run_jobs, phone):
    event = load_payload("generic/order_shipped")
    event["customer"]["phone"] = phone
    response = post_generic(client, sign, event)
    assert response.status_code == 202
    message = Message.get_by_id(response.get_json()["message_ids"][0])
    assert (message.state, message.reason) == (State.SUPPRESSED, Reason.INVALID_PHONE)
    run_jobs()
    assert Message.get_by_id(message.id).state == State.SUPPRESSED


def test_missing_template_parameter_suppresses_with_a_reason(client, sign):
    event = load_payload("generic/order_shipped")
    del event["order"]["tracking"]["url"]
    ids = post_generic(client, sign, event).get_json()["message_ids"]
    message = Message.get_by_id(ids[0])
    assert (message.state, message.reason) == (State.SUPPRESSED, Reason.MISSING_PARAMETER)
    assert "tracking_url" in message.error_text


def test_database_outage_is_503_so_the_sender_redelivers(client, sign, database_down):
    response = post_generic(client, sign, load_payload("generic/order_shipped"))
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    database_down.end()
    assert stored_counts() == (0, 0, 0, 0)
    assert post_generic(client, sign, load_payload("generic/order_shipped")).status_code == 202


def test_lost_enqueue_is_recovered_by_the_sweep(client, sign, run_jobs, redis_conn, time_machine):
    from datetime import timedelta

    from bot.core.models import utcnow
    from bot.extensions import services
    from jobs.sweep import sweep_once

    time_machine.move_to(utcnow(), tick=True)
    ids = post_generic(client, sign, load_payload("generic/order_shipped")).get_json()[
        "message_ids"
    ]
    redis_conn.flushdb()  # Redis lost everything before a worker ran
    assert run_jobs() == 0
    time_machine.shift(timedelta(minutes=5))
    assert sweep_once(services(), utcnow())["messages_requeued"] == 1
    run_jobs()
    assert Message.get_by_id(ids[0]).state == State.READ
    assert len(recorded(redis_conn)) == 1


def test_unreachable_redis_still_accepts_and_the_sweep_sends_later(
    make_app, settings, sign, run_jobs, time_machine
):
    from datetime import timedelta

    from bot.core.models import utcnow
    from bot.extensions import services
    from jobs.sweep import sweep_once
    from tests.conftest import free_port

    time_machine.move_to(utcnow(), tick=True)
    down = make_app(settings.replace(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    response = post_generic(down.test_client(), sign, load_payload("generic/order_shipped"))
    assert response.status_code == 202
    message_id = response.get_json()["message_ids"][0]
    assert Message.get_by_id(message_id).state == State.QUEUED

    make_app(settings)  # Redis is back
    time_machine.shift(timedelta(minutes=5))
    sweep_once(services(), utcnow())
    run_jobs()
    assert Message.get_by_id(message_id).state == State.READ


def test_the_same_event_delivered_concurrently_is_stored_once(app, sign):
    import threading

    raw = json.dumps(load_payload("generic/order_shipped")).encode()
    headers = {"X-Signature-256": "sha256=" + sign(SECRET, raw)}
    barrier = threading.Barrier(6)
    answers = []

    def deliver():
        client = app.test_client()
        barrier.wait()
        response = client.post("/webhooks/orders", data=raw, headers=headers)
        answers.append((response.status_code, tuple(response.get_json()["message_ids"])))

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(code for code, _ in answers) == [200] * 5 + [202]
    assert len({ids for _, ids in answers}) == 1
    assert stored_counts()[:2] == (1, 1)


def test_a_nul_character_in_an_order_event_is_400_naming_the_field(client, sign):
    event = load_payload("generic/order_shipped")
    event["customer"]["name"] = "As\x00ha"
    response = post_generic(client, sign, event)
    assert response.status_code == 400
    assert "customer.name" in response.get_json()["error"]["fields"]
    assert stored_counts() == (0, 0, 0, 0)
