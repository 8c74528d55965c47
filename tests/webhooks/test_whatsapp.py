"""WhatsApp webhooks: Meta's handshake, signed receipts from Meta and Interakt, inbound
messages stored once, and Interakt's deliveries spooled through a database outage."""

from __future__ import annotations

import copy
import json

import pytest

from bot.models import InboundMessage, Message, Reason, State, StatusEvent
from tests.conftest import SECRETS, load_payload
from tests.factories import queued_message

META_SECRET = SECRETS["meta_app_secret"]
INTERAKT_SECRET = SECRETS["interakt_webhook_secret"]


def post_meta(client, sign, body, secret=META_SECRET):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(
        "/webhooks/whatsapp/meta",
        data=raw,
        headers={"X-Hub-Signature-256": "sha256=" + sign(secret, raw)},
        content_type="application/json",
    )


def post_interakt(client, sign, body, secret=INTERAKT_SECRET):
    raw = json.dumps(body).encode()
    return client.post(
        "/webhooks/whatsapp/interakt",
        data=raw,
        headers={"Interakt-Signature": "sha256=" + sign(secret, raw)},
        content_type="application/json",
    )


def meta_receipt(status: str, wamid: str, callback: str | None = None) -> dict:
    body = copy.deepcopy(load_payload("meta/statuses")[status])
    entry = body["entry"][0]["changes"][0]["value"]["statuses"][0]
    entry["id"] = wamid
    entry["biz_opaque_callback_data"] = callback
    return body


def sent_message(provider_message_id: str, provider: str = "meta") -> Message:
    message = queued_message()
    Message.update(
        state=State.SENT, provider=provider, provider_message_id=provider_message_id
    ).where(Message.id == message.id).execute()
    return Message.get_by_id(message.id)


def test_meta_handshake_echoes_the_challenge(client):
    response = client.get(
        "/webhooks/whatsapp/meta?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=test-verify-token"
    )
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "1158201444"


@pytest.mark.parametrize(
    "query",
    [
        "hub.mode=subscribe&hub.challenge=1&hub.verify_token=wrong",
        "hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=test-verify-token",
        "hub.challenge=1",
    ],
)
def test_meta_handshake_with_a_wrong_token_is_403(client, query):
    assert client.get(f"/webhooks/whatsapp/meta?{query}").status_code == 403


def test_meta_receipts_move_the_message_forward_only(client, sign, run_jobs):
    message = sent_message("wamid.A1")
    for status in ("read", "delivered", "sent"):  # arrival out of order
        assert post_meta(client, sign, meta_receipt(status, "wamid.A1")).status_code == 200
    run_jobs()
    message = Message.get_by_id(message.id)
    assert message.state == State.READ
    assert StatusEvent.select().where(StatusEvent.applied == True).count() == 3  # noqa: E712


def test_meta_failed_receipt_carries_the_error_code(client, sign, run_jobs):
    message = sent_message("wamid.F1")
    post_meta(client, sign, meta_receipt("failed", "wamid.F1"))
    run_jobs()
    message = Message.get_by_id(message.id)
    assert (message.state, message.reason, message.error_code) == (
        State.FAILED,
        Reason.DELIVERY_FAILED,
        "131049",
    )


def test_meta_redelivered_webhook_is_a_no_op(client, sign, run_jobs):
    sent_message("wamid.R1")
    body = meta_receipt("delivered", "wamid.R1")
    post_meta(client, sign, body)
    post_meta(client, sign, body)
    run_jobs()
    assert StatusEvent.select().count() == 1


def test_meta_receipt_is_matched_by_our_callback_data(client, sign, run_jobs):
    message = queued_message()
    Message.update(state=State.SENDING).where(Message.id == message.id).execute()
    post_meta(client, sign, meta_receipt("sent", "wamid.CB1", callback=message.callback_data))
    run_jobs()
    message = Message.get_by_id(message.id)
    assert (message.state, message.provider_message_id) == (State.SENT, "wamid.CB1")


def test_meta_bad_signature_is_401_and_stores_nothing(client, sign):
    response = post_meta(client, sign, meta_receipt("sent", "wamid.X"), secret="not-the-app-secret")
    assert response.status_code == 401
    assert StatusEvent.select().count() == 0


@pytest.mark.parametrize(
    "raw",
    [b"{oops", b"[]", json.dumps({"object": "whatsapp_business_account", "entry": 5}).encode()],
)
def test_meta_malformed_body_is_400(client, sign, raw):
    response = post_meta(client, sign, raw)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_payload"


def test_meta_inbound_message_is_stored_once(client, sign):
    body = load_payload("meta/messages")["text"]
    post_meta(client, sign, body)
    post_meta(client, sign, body)
    [inbound] = InboundMessage.select()
    assert inbound.provider == "meta" and inbound.phone.startswith("+") and inbound.text


def test_meta_database_outage_is_503(client, sign, database_down):
    assert post_meta(client, sign, meta_receipt("sent", "wamid.D1")).status_code == 503


def test_unknown_provider_is_404(client):
    assert client.post("/webhooks/whatsapp/gupshup", data=b"{}").status_code == 404


def interakt_receipt(kind: str, provider_id: str) -> dict:
    body = copy.deepcopy(load_payload("interakt/webhooks")[kind])
    body["data"]["message"]["id"] = provider_id
    return body


def test_interakt_receipts_update_the_message(client, sign, run_jobs):
    message = sent_message("dfc668a2-c06c-4e9a-a4fd-7b65bc1fdc84", provider="interakt")
    assert (
        post_interakt(
            client, sign, interakt_receipt("api_delivered", message.provider_message_id)
        ).status_code
        == 200
    )
    run_jobs()
    assert Message.get_by_id(message.id).state == State.DELIVERED


def test_interakt_bad_signature_is_401(client, sign):
    response = post_interakt(client, sign, interakt_receipt("api_sent", "x"), secret="wrong")
    assert response.status_code == 401
    assert StatusEvent.select().count() == 0


def test_interakt_delivery_during_a_database_outage_is_spooled_and_applied_later(
    client, sign, run_jobs, database_down, redis_conn
):
    from bot import spool
    from bot.extensions import services
    from bot.models import utcnow
    from jobs.sweep import sweep_once

    database_down.end()
    message = sent_message("c0ffee00-0000-4000-8000-000000000001", provider="interakt")
    database_down.__init__()  # the database goes away again
    response = post_interakt(
        client, sign, interakt_receipt("api_read", message.provider_message_id)
    )
    assert response.status_code == 200  # Interakt never redelivers: we keep it ourselves
    assert spool.size(redis_conn) == 1
    database_down.end()
    sweep_once(services(), utcnow())
    run_jobs()
    assert spool.size(redis_conn) == 0
    assert Message.get_by_id(message.id).state == State.READ


def test_a_nul_character_in_a_customer_message_is_dropped_not_fatal(client, sign):
    body = load_payload("meta/messages")["text"]
    body["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = "STOP\x00"
    assert post_meta(client, sign, body).status_code == 200
    assert InboundMessage.get().text == "STOP"
