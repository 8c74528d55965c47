"""WhatsApp webhooks: Meta's handshake, signed receipts from Meta and Interakt, inbound
messages stored once, and Interakt's deliveries spooled through a database outage."""

from __future__ import annotations

import copy
import json

import pytest

from bot.core.models import (
    ConsentEvent,
    Customer,
    InboundMessage,
    InboxEntry,
    Message,
    Reason,
    State,
    StatusEvent,
    UnhandledUpdate,
)
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


@pytest.mark.parametrize("raw", [b"{oops", b"\xff\xfe{}", b""])
def test_meta_body_that_is_not_json_is_the_one_content_refused(client, sign, raw):
    response = post_meta(client, sign, raw)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_payload"
    assert UnhandledUpdate.select().count() == 0


@pytest.mark.parametrize(
    "body, reason",
    [
        ([], "not_whatsapp"),
        ("text", "not_whatsapp"),
        ({"object": "page", "entry": []}, "not_whatsapp"),
        ({"object": "whatsapp_business_account", "entry": 5}, "malformed"),
    ],
)
def test_meta_signed_json_that_is_no_webhook_is_taken_and_kept_raw(
    client, sign, run_jobs, body, reason
):
    response = post_meta(client, sign, json.dumps(body).encode())

    assert response.status_code == 200
    assert response.get_json() == {"accepted": True}
    run_jobs()
    [row] = UnhandledUpdate.select()
    assert (row.provider, row.kind, row.reason, row.payload) == ("meta", "payload", reason, body)


# --- the findings: a signed delivery is never refused for what it contains ----------


def with_good_receipt(body: dict, wamid: str = "wamid.GOOD1") -> dict:
    """`body` with a readable receipt in another entry of the same POST."""
    body["entry"] += meta_receipt("delivered", wamid)["entry"]
    return body


def username_message() -> dict:
    """A username user's message with only a BSUID (PROVIDERS.md §9.1): no `from`, no
    `wa_id`, `from_user_id` and the contact's `user_id` and `username` instead."""
    body = load_payload("meta/messages")["text"]
    value = body["entry"][0]["changes"][0]["value"]
    value["contacts"] = [
        {
            "profile": {"name": "Asha", "username": "@asha.k"},
            "user_id": "IN.13491208655302741918",
            "parent_user_id": "IN.ENT.11815799212886844830",
        }
    ]
    message = value["messages"][0]
    del message["from"]
    message["from_user_id"] = "IN.13491208655302741918"
    return body


def anonymous_message() -> dict:
    """A message naming its sender by neither a number nor a BSUID (PROVIDERS.md §9.1
    says one of them is always there)."""
    body = load_payload("meta/messages")["text"]
    value = body["entry"][0]["changes"][0]["value"]
    del value["contacts"]
    del value["messages"][0]["from"]
    return body


def signup_preference() -> dict:
    body = load_payload("meta/other")["user_preferences"]
    pref = body["entry"][0]["changes"][0]["value"]["user_preferences"][0]
    pref.update(value="signup", detail="User signed up for marketing messages")
    return body


def interactive_with_errors_only() -> dict:
    """Meta could not pass the interactive content on: no `interactive` object (§9.2)."""
    body = load_payload("meta/messages")["interactive"]
    message = body["entry"][0]["changes"][0]["value"]["messages"][0]
    del message["interactive"]
    message["errors"] = [
        {
            "code": 131000,
            "title": "Something went wrong",
            "message": "Something went wrong",
            "error_data": {"details": "Unsupported webhook payload"},
        }
    ]
    return body


def unknown_field() -> dict:
    body = load_payload("meta/other")["phone_number_quality_flagged"]
    change = body["entry"][0]["changes"][0]
    # Not a field one can subscribe to (Meta's changelog, 2026-08-11: a changed BSUID
    # comes as a `user_changed_user_id` system message), so kept raw if it ever comes.
    change["field"] = "user_id_update"
    change["value"] = {"wa_id": "919812345678", "user_id": {"previous": "IN.1", "current": "IN.2"}}
    return body


FINDINGS = {
    "message-from-no-one": (anonymous_message, "message", "malformed", "no from_user_id"),
    "user-preferences-signup": (signup_preference, "user_preference", "unknown_value", "signup"),
    "interactive-with-errors-only": (
        interactive_with_errors_only,
        "message",
        "provider_error",
        "131000",
    ),
    "unknown-change-field": (unknown_field, "change:user_id_update", "unknown_field", "user_id"),
}


@pytest.mark.parametrize("build, kind, reason, words", FINDINGS.values(), ids=FINDINGS.keys())
def test_meta_finding_is_answered_200_the_rest_stored_and_the_part_kept_raw(
    client, sign, run_jobs, build, kind, reason, words
):
    message = sent_message("wamid.GOOD1")
    body = with_good_receipt(build())

    response = post_meta(client, sign, body)

    assert response.status_code == 200, response.get_json()
    run_jobs()
    assert Message.get_by_id(message.id).state == State.DELIVERED  # the good receipt
    [row] = UnhandledUpdate.select()
    assert (row.provider, row.kind, row.reason) == ("meta", kind, reason)
    assert words in row.detail and row.location.startswith("entry[0]")
    assert row.payload  # kept as Meta sent it


def test_meta_interactive_message_with_errors_still_opens_the_service_window(
    client, sign, run_jobs
):
    post_meta(client, sign, interactive_with_errors_only())
    run_jobs()

    [inbound] = InboundMessage.select()
    assert (inbound.type, inbound.text, inbound.phone) == ("interactive", None, "+919812345678")
    assert Customer.get(Customer.phone == "+919812345678").last_inbound_at is not None


def test_meta_signup_preference_changes_no_consent(client, sign, run_jobs):
    post_meta(client, sign, signup_preference())
    run_jobs()
    assert ConsentEvent.select().count() == 0


def test_meta_username_message_whose_contact_has_a_number_is_stored_as_theirs(
    client, sign, run_jobs
):
    body = username_message()
    body["entry"][0]["changes"][0]["value"]["contacts"][0]["wa_id"] = "919812345678"

    assert post_meta(client, sign, body).status_code == 200
    run_jobs()

    [inbound] = InboundMessage.select()
    assert (inbound.phone, inbound.user_id, inbound.text) == (
        "+919812345678",
        "IN.13491208655302741918",
        "mera order kab aayega?",
    )
    assert UnhandledUpdate.select().count() == 0
    customer = inbound.customer  # one customer with both keys, and the parent BSUID
    assert (customer.phone, customer.user_id, customer.parent_user_id, customer.username) == (
        "+919812345678",
        "IN.13491208655302741918",
        "IN.ENT.11815799212886844830",
        "@asha.k",
    )


def test_meta_redelivered_unhandled_part_is_kept_once(client, sign, run_jobs):
    body = unknown_field()
    post_meta(client, sign, body)
    run_jobs()
    post_meta(client, sign, body)
    run_jobs()
    assert UnhandledUpdate.select().count() == 1


def test_interakt_type_dakiya_does_not_act_on_is_taken_and_kept_raw(client, sign, run_jobs):
    body = load_payload("interakt/webhooks")["api_clicked"]

    response = post_interakt(client, sign, body)
    run_jobs()

    assert response.status_code == 200
    [row] = UnhandledUpdate.select()
    assert (row.provider, row.kind, row.reason) == (
        "interakt",
        "message_api_clicked",
        "unknown_type",
    )
    assert row.payload == body and row.phone == "+917003705584"


def test_meta_inbound_message_is_stored_once(client, sign, run_jobs):
    body = load_payload("meta/messages")["text"]
    post_meta(client, sign, body)
    post_meta(client, sign, body)  # both kept; the second is a no-op when taken in
    assert InboxEntry.select().count() == 2
    run_jobs()
    assert InboxEntry.select().count() == 0
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
    from bot.core import spool
    from bot.core.models import utcnow
    from bot.extensions import services
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


def test_a_nul_character_in_a_customer_message_is_dropped_not_fatal(client, sign, run_jobs):
    body = load_payload("meta/messages")["text"]
    body["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = "STOP\x00"
    assert post_meta(client, sign, body).status_code == 200
    run_jobs()
    assert InboundMessage.get().text == "STOP"
