"""`GET /metrics`: Prometheus text, protected, with every reason code counted."""

from __future__ import annotations

import pytest

from bot.core.models import Message, Reason, State
from tests.conftest import ADMIN
from tests.factories import queued_message


@pytest.fixture
def settings(settings):
    return settings.replace(metrics_token="scrape-me")


def test_metrics_need_the_token_or_the_admin_login(client):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-me"}).status_code == 200
    assert client.get("/metrics", headers=ADMIN).status_code == 200


def test_suppressions_and_deferrals_are_counted_by_reason(client):
    first, second = (
        queued_message(event_id="a", order_id="1"),
        queued_message(event_id="b", order_id="2"),
    )
    Message.update(state=State.SUPPRESSED, reason=Reason.OPTED_OUT).where(
        Message.id == first.id
    ).execute()
    Message.update(state=State.DEFERRED, reason=Reason.QUIET_HOURS).where(
        Message.id == second.id
    ).execute()
    text = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"}).get_data(
        as_text=True
    )
    assert 'dakiya_messages{category="utility",reason="opted_out",state="suppressed"} 1.0' in text
    assert 'dakiya_messages{category="utility",reason="quiet_hours",state="deferred"} 1.0' in text
    assert 'dakiya_order_events{source="generic"} 2.0' in text
    assert 'dakiya_queue_depth{queue="orders"} 1.0' in text  # one send job for both


def scrape(client) -> str:
    return client.get("/metrics", headers={"Authorization": "Bearer scrape-me"}).get_data(
        as_text=True
    )


def test_webhook_requests_and_send_latency_are_recorded(client, sign, run_jobs):
    import json

    from tests.conftest import SECRETS, load_payload

    raw = json.dumps(load_payload("generic/order_shipped")).encode()
    headers = {"X-Signature-256": "sha256=" + sign(SECRETS["order_webhook_secret"], raw)}
    client.post("/webhooks/orders", data=raw, headers=headers)
    client.post("/webhooks/orders", data=raw, headers={"X-Signature-256": "sha256=00"})
    run_jobs()
    text = scrape(client)
    assert 'dakiya_webhook_requests_total{endpoint="/webhooks/orders",status="202"} 1.0' in text
    assert 'dakiya_webhook_requests_total{endpoint="/webhooks/orders",status="401"} 1.0' in text
    assert 'dakiya_webhook_seconds_count{endpoint="/webhooks/orders"} 2.0' in text
    assert 'dakiya_send_latency_seconds_count{category="utility",provider="sandbox"} 1.0' in text
    assert 'dakiya_send_attempts_total{outcome="sent",provider="sandbox"} 1.0' in text
    assert (
        'dakiya_messages_by_template{provider="sandbox",state="read",template="order_shipped"} 1.0'
        in text
    )


def test_retries_and_failure_codes_are_counted(make_app, meta_settings, fake_whatsapp, run_jobs):
    client = make_app(meta_settings.replace(metrics_token="scrape-me")).test_client()
    fake_whatsapp.script(
        (500, {"error": {"message": "Something went wrong", "code": 131000}}),
    )
    queued_message(event_id="a", order_id="1")
    fake_whatsapp.script((400, {"error": {"message": "Message undeliverable", "code": 131026}}))
    queued_message(event_id="b", order_id="2", phone="+919876543210")
    run_jobs()
    text = scrape(client)
    assert 'dakiya_send_retries_total{code="131000",provider="meta"} 1.0' in text
    assert 'dakiya_failures_by_code{code="131026"} 1.0' in text


def test_unhandled_webhook_parts_are_counted_by_provider_and_reason(client, sign, run_jobs):
    import json

    from tests.conftest import SECRETS, load_payload

    body = load_payload("meta/other")["user_preferences"]
    body["entry"][0]["changes"][0]["value"]["user_preferences"][0]["value"] = "signup"
    body["entry"][0]["changes"].append({"field": "user_id_update", "value": {}})
    raw = json.dumps(body).encode()
    headers = {"X-Hub-Signature-256": "sha256=" + sign(SECRETS["meta_app_secret"], raw)}
    assert client.post("/webhooks/whatsapp/meta", data=raw, headers=headers).status_code == 200
    run_jobs()

    text = scrape(client)
    assert 'dakiya_unhandled_updates{provider="meta",reason="unknown_value"} 1.0' in text
    assert 'dakiya_unhandled_updates{provider="meta",reason="unknown_field"} 1.0' in text


def test_webhook_telemetry_is_buffered_and_written_in_one_go(redis_conn):
    """Issue 19: no Redis round trip per webhook request; a flush writes them all."""
    from bot.core import telemetry

    buffer = telemetry.Buffer(flush_seconds=3600)
    for _ in range(3):
        buffer.count(redis_conn, "webhook_requests", {"endpoint": "/x", "status": "200"})
        buffer.observe(redis_conn, "webhook_seconds", {"endpoint": "/x"}, 0.003)
    assert redis_conn.hgetall(telemetry.PREFIX + "webhook_requests") == {}

    buffer.flush(redis_conn)

    counted = redis_conn.hgetall(telemetry.PREFIX + "webhook_requests")
    assert list(counted.values()) == [b"3"]
    assert float(
        next(iter(redis_conn.hgetall(telemetry.PREFIX + "webhook_seconds:sum").values()))
    ) == (pytest.approx(0.009))
