"""MetaProvider against Meta's documented wire format (shared/PROVIDERS.md §1), faked at
the HTTP transport with `responses` or, for network failures, with real sockets."""

from __future__ import annotations

import copy
import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
import requests
import responses
from responses import matchers

from bot.core.config import Settings
from bot.core.signing import sign_hmac
from bot.delivery.providers.base import (
    AccountNews,
    ButtonParam,
    DeliveryStatus,
    ErrorKind,
    Fact,
    InboundMessage,
    News,
    OutboundMessage,
    PreferenceUpdate,
    Pricing,
    ProviderError,
    Severity,
    StatusUpdate,
    TemplateCall,
    Unhandled,
    UnhandledItem,
)
from bot.delivery.providers.meta import META_ERROR_KINDS, MetaProvider, message_body

PAYLOADS = Path(__file__).parents[1] / "payloads" / "meta"
SEND_URL = "https://graph.facebook.com/v25.0/106540352242922/messages"
AUTH = {"Authorization": "Bearer test-access-token"}
WAMID = "wamid.HBgMOTE5ODEyMzQ1Njc4FQIAERgSQjVGMjM3QTNBN0ZGMjE0QzY3AA=="


def payload(name: str) -> dict:
    return json.loads((PAYLOADS / f"{name}.json").read_text())


@pytest.fixture
def settings() -> Settings:
    return Settings(
        whatsapp_provider="meta",
        meta_access_token="test-access-token",
        meta_phone_number_id="106540352242922",
        meta_app_secret="test-app-secret",
        meta_verify_token="test-verify-token",
    )


@pytest.fixture
def provider(settings: Settings) -> MetaProvider:
    return MetaProvider(settings)


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


def shipped_template(**changes) -> OutboundMessage:
    template = TemplateCall(
        name="order_shipped",
        language="hi",
        header=("#1042",),
        body=("Asha", "#1042", "₹1,299"),
        buttons=(
            ButtonParam(index=0, sub_type="url", value="track/1042"),
            ButtonParam(index=1, sub_type="quick_reply", value="STATUS:1042"),
        ),
    )
    fields = {"message_id": 7, "to": "+919812345678", "callback_data": "order:1042:shipped"}
    return OutboundMessage(**{**fields, "template": template, **changes})


def expect_send(api: responses.RequestsMock, body: dict, **reply) -> None:
    api.post(
        SEND_URL,
        match=[matchers.header_matcher(AUTH), matchers.json_params_matcher(body)],
        **{"json": payload("send_responses")["accepted"], **reply},
    )


def expect_error(api: responses.RequestsMock, status: int, **reply) -> None:
    api.post(SEND_URL, status=status, **reply)


def send_error(provider: MetaProvider, message: OutboundMessage | None = None) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        provider.send(message or shipped_template())
    return caught.value


# --- send: request bodies (§1.2) -------------------------------------------------------


def test_template_send_posts_documented_body(provider, api):
    expect_send(
        api,
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "919812345678",
            "type": "template",
            "biz_opaque_callback_data": "order:1042:shipped",
            "template": {
                "name": "order_shipped",
                "language": {"policy": "deterministic", "code": "hi"},
                "components": [
                    {"type": "header", "parameters": [{"type": "text", "text": "#1042"}]},
                    {
                        "type": "body",
                        "parameters": [
                            {"type": "text", "text": "Asha"},
                            {"type": "text", "text": "#1042"},
                            {"type": "text", "text": "₹1,299"},
                        ],
                    },
                    {
                        "type": "button",
                        "sub_type": "url",
                        "index": "0",
                        "parameters": [{"type": "text", "text": "track/1042"}],
                    },
                    {
                        "type": "button",
                        "sub_type": "quick_reply",
                        "index": "1",
                        "parameters": [{"type": "payload", "payload": "STATUS:1042"}],
                    },
                ],
            },
        },
    )

    result = provider.send(shipped_template())

    assert result.provider_message_id == WAMID


def test_text_send_posts_documented_body(provider, api):
    expect_send(
        api,
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "919812345678",
            "type": "text",
            "biz_opaque_callback_data": "reply:abc",
            "text": {"preview_url": False, "body": "Your order #1042 has shipped."},
        },
    )
    message = OutboundMessage(
        message_id=8,
        to="+919812345678",
        callback_data="reply:abc",
        text="Your order #1042 has shipped.",
    )

    assert provider.send(message).provider_message_id == WAMID


def test_template_without_parameters_omits_components(provider, api):
    expect_send(
        api,
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "919812345678",
            "type": "template",
            "biz_opaque_callback_data": "order:1042:confirmed",
            "template": {
                "name": "order_confirmed",
                "language": {"policy": "deterministic", "code": "en"},
            },
        },
    )
    message = shipped_template(
        callback_data="order:1042:confirmed",
        template=TemplateCall(name="order_confirmed", language="en"),
    )

    provider.send(message)


def test_template_with_only_body_parameters_sends_only_a_body_component(provider, api):
    expect_send(
        api,
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "919812345678",
            "type": "template",
            "biz_opaque_callback_data": "order:1042:shipped",
            "template": {
                "name": "order_shipped",
                "language": {"policy": "deterministic", "code": "en_US"},
                "components": [{"type": "body", "parameters": [{"type": "text", "text": "Asha"}]}],
            },
        },
    )

    provider.send(shipped_template(template=TemplateCall("order_shipped", "en_US", body=("Asha",))))


def test_send_uses_configured_base_url_version_and_timeout(settings, api):
    provider = MetaProvider(
        settings.replace(
            meta_api_base_url="http://127.0.0.1:8099",
            meta_api_version="v26.0",
            provider_timeout_seconds=2.5,
        )
    )
    api.post(
        "http://127.0.0.1:8099/v26.0/106540352242922/messages",
        json=payload("send_responses")["accepted"],
    )

    provider.send(shipped_template())

    assert api.calls[0].request.req_kwargs["timeout"] == 2.5


def test_message_held_for_quality_assessment_counts_as_accepted(provider, api):
    api.post(SEND_URL, json=payload("send_responses")["held_for_quality_assessment"])

    assert provider.send(shipped_template()).provider_message_id == WAMID


@pytest.mark.parametrize(
    "reply",
    [
        {"json": {"messaging_product": "whatsapp", "messages": []}},
        {"json": {"messaging_product": "whatsapp", "messages": [{"message_status": "accepted"}]}},
        {"body": "<html>OK</html>"},
    ],
    ids=["empty-messages", "no-id", "not-json"],
)
def test_accepted_request_without_message_id_is_ambiguous(provider, api, reply):
    api.post(SEND_URL, status=200, **reply)

    assert send_error(provider).kind is ErrorKind.AMBIGUOUS


def test_unsupported_button_sub_type_is_permanent_and_sends_nothing(provider, api):
    template = TemplateCall(
        "otp", "en", buttons=(ButtonParam(index=0, sub_type="copy_code", value="1234"),)
    )

    error = send_error(provider, shipped_template(template=template))

    assert error.kind is ErrorKind.PERMANENT
    assert "copy_code" in error.text


# --- send: error classification (§1.3, §1.11) ------------------------------------------

R, L, P = ErrorKind.RETRY, ErrorKind.RATE_LIMITED, ErrorKind.PERMANENT

#: Written out independently of META_ERROR_KINDS, from PROVIDERS.md §1.11.
EXPECTED_KINDS = {
    1: R, 2: R, 4: R, 80007: R, 131000: R, 131016: R, 131057: R,
    130429: L, 131056: L,
    0: P, 190: P, 3: P, 10: P, 100: P, 200: P, 299: P, 368: P, 470: P, 130472: P,
    131008: P, 131009: P, 131026: P, 131030: P, 131031: P, 131042: P, 131047: P,
    131048: P, 131049: P, 131050: P, 131051: P,
    132000: P, 132001: P, 132005: P, 132007: P, 132012: P, 132015: P, 132016: P,
    # 2026, PROVIDERS.md §9.1 / §9.3 (pywa's errors.py): none mended by a retry
    131062: P, 131063: P, 131064: P, 130497: P, 131037: P, 137000: P, 131045: P,
    133010: P, 133016: P,
}  # fmt: skip


def test_every_code_in_the_table_is_covered_by_the_expectations():
    assert set(META_ERROR_KINDS) == set(EXPECTED_KINDS) | set(range(200, 300))


@pytest.mark.parametrize("code, kind", EXPECTED_KINDS.items(), ids=str)
def test_meta_error_code_maps_to_kind(provider, api, code, kind):
    error_body = {
        "error": {
            "message": f"(#{code}) something went wrong",
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": "details here"},
            "fbtrace_id": "AbC123",
        }
    }
    expect_error(api, 400, json=error_body)

    error = send_error(provider)

    assert (error.code, error.kind) == (str(code), kind)


def test_documented_code_wins_over_http_status(provider, api):
    body = {"error": {"message": "(#131047) Re-engagement message", "code": 131047}}
    expect_error(api, 500, json=body)

    assert send_error(provider).kind is ErrorKind.PERMANENT


def test_pair_rate_limit_keeps_message_details_code_and_retry_after(provider, api):
    expect_error(
        api, 429, json=payload("send_responses")["pair_rate_limit"], headers={"Retry-After": "6"}
    )

    error = send_error(provider)

    assert error.kind is ErrorKind.RATE_LIMITED
    assert error.code == "131056"
    assert error.retry_after == 6.0
    assert error.text == (
        "(#131056) (Business Account, Consumer Account) pair rate limit hit: Message failed to "
        "send because there were too many messages sent from this phone number to the same "
        "phone number in a short period of time."
    )


def test_missing_template_translation_is_permanent_with_details(provider, api):
    expect_error(api, 404, json=payload("send_responses")["template_not_found"])

    error = send_error(provider)

    assert (error.kind, error.code, error.retry_after) == (ErrorKind.PERMANENT, "132001", None)
    assert error.text.endswith("template name (order_shipped) does not exist in hi")


def test_expired_token_is_permanent(provider, api):
    expect_error(api, 401, json=payload("send_responses")["token_expired"])

    error = send_error(provider)

    assert (error.kind, error.code) == (ErrorKind.PERMANENT, "190")
    assert error.text.startswith("Error validating access token")


@pytest.mark.parametrize(
    "status, kind",
    [(500, R), (502, R), (503, R), (400, P), (403, P), (404, P), (429, L)],
)
def test_unknown_code_is_classified_by_http_status(provider, api, status, kind):
    expect_error(api, status, json={"error": {"message": "Unknown", "code": 80008}})

    error = send_error(provider)

    assert (error.kind, error.code) == (kind, "80008")


@pytest.mark.parametrize(
    "reply",
    [{"json": {"error": {"message": "Too many calls"}}}, {"body": "Too Many Requests"}],
    ids=["json-without-code", "plain-text"],
)
def test_http_429_without_code_is_rate_limited(provider, api, reply):
    expect_error(api, 429, headers={"Retry-After": "30"}, **reply)

    error = send_error(provider)

    assert (error.kind, error.code, error.retry_after) == (ErrorKind.RATE_LIMITED, "http_429", 30)


def test_retry_after_as_http_date_is_ignored(provider, api):
    expect_error(
        api,
        429,
        json={"error": {"message": "slow down", "code": 130429}},
        headers={"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"},
    )

    assert send_error(provider).retry_after is None


@pytest.mark.parametrize("status", [500, 502, 504])
def test_non_json_5xx_is_retried(provider, api, status):
    expect_error(api, status, body="<html><body>Bad Gateway</body></html>")

    error = send_error(provider)

    assert (error.kind, error.code) == (ErrorKind.RETRY, f"http_{status}")
    assert "Bad Gateway" in error.text


def test_non_json_4xx_is_permanent(provider, api):
    expect_error(api, 400, body="Bad Request")

    assert send_error(provider).kind is ErrorKind.PERMANENT


# --- send: network failures ------------------------------------------------------------


def test_connect_timeout_is_retried_because_nothing_reached_meta(provider, api):
    api.post(SEND_URL, body=requests.ConnectTimeout("connect timed out"))

    assert send_error(provider).kind is ErrorKind.RETRY


def test_read_timeout_is_ambiguous_because_the_send_may_have_gone_through(provider, api):
    api.post(SEND_URL, body=requests.ReadTimeout("read timed out"))

    error = send_error(provider)

    assert error.kind is ErrorKind.AMBIGUOUS
    assert isinstance(error.__cause__, requests.ReadTimeout)


def test_refused_connection_is_retried(settings):
    with socket.socket() as probe:  # bind, then close: nothing listens on that port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = MetaProvider(settings.replace(meta_api_base_url=f"http://127.0.0.1:{port}"))

    assert send_error(provider).kind is ErrorKind.RETRY


def test_connection_dropped_after_request_is_ambiguous(settings):
    with one_shot_server(lambda conn: None) as port:  # read the request, close, no answer
        provider = MetaProvider(settings.replace(meta_api_base_url=f"http://127.0.0.1:{port}"))

        assert send_error(provider).kind is ErrorKind.AMBIGUOUS


class one_shot_server:
    """A socket server that reads one whole HTTP request, runs `answer`, and closes."""

    def __init__(self, answer: Callable[[socket.socket], None]) -> None:
        self.answer = answer
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> int:
        self.thread.start()
        return self.listener.getsockname()[1]

    def __exit__(self, *exc_info) -> None:
        self.thread.join(timeout=5)
        self.listener.close()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            while len(body) < length:
                body += conn.recv(65536)
            self.answer(conn)


# --- webhook signature (§1.6) ----------------------------------------------------------

BODY = json.dumps(payload("statuses")["sent"]).encode()
GOOD = "sha256=" + sign_hmac("test-app-secret", BODY)


@pytest.mark.parametrize(
    "headers, valid",
    [
        ({"X-Hub-Signature-256": GOOD}, True),
        ({"x-hub-signature-256": GOOD}, True),
        ({"X-Hub-Signature-256": "sha256=" + sign_hmac("another-secret", BODY)}, False),
        ({}, False),
        ({"X-Hub-Signature-256": ""}, False),
        ({"X-Hub-Signature-256": GOOD.removeprefix("sha256=")}, False),
        ({"X-Hub-Signature-256": "sha1=" + GOOD.removeprefix("sha256=")}, False),
        ({"X-Hub-Signature": GOOD}, False),
    ],
    ids=[
        "good",
        "lowercase-header",
        "wrong-secret",
        "missing",
        "empty",
        "no-prefix",
        "wrong-prefix",
        "legacy-header",
    ],
)
def test_webhook_signature_is_checked_over_raw_body(provider, headers, valid):
    assert provider.verify_webhook(BODY, headers) is valid


def test_signature_over_different_bytes_is_rejected(provider):
    reserialised = json.dumps(json.loads(BODY), indent=1).encode()

    assert provider.verify_webhook(reserialised, {"X-Hub-Signature-256": GOOD}) is False


def test_unconfigured_app_secret_never_verifies(settings):
    provider = MetaProvider(settings.replace(meta_app_secret=""))
    unkeyed = "sha256=" + sign_hmac("", BODY)

    assert provider.verify_webhook(BODY, {"X-Hub-Signature-256": unkeyed}) is False


# --- webhook parsing: statuses (§1.9) --------------------------------------------------


def test_sent_status_is_parsed_with_callback_data_and_pricing(provider):
    webhook = payload("statuses")["sent"]

    [update] = provider.parse_webhook(webhook)

    assert update == StatusUpdate(
        provider="meta",
        provider_message_id=WAMID,
        status=DeliveryStatus.SENT,
        occurred_at=datetime(2025, 11, 24, 16, 0, 5),
        recipient="+919812345678",
        callback_data="order:1042:shipped",
        pricing=Pricing(billable=True, category="utility", type="regular", model="PMP"),
    )
    assert update.raw == webhook["entry"][0]["changes"][0]["value"]["statuses"][0]


@pytest.mark.parametrize(
    "name, status, occurred_at",
    [
        ("delivered", DeliveryStatus.DELIVERED, datetime(2025, 11, 24, 16, 0, 7)),
        ("read", DeliveryStatus.READ, datetime(2025, 11, 24, 16, 1, 0)),
    ],
)
def test_delivery_receipts_carry_status_and_naive_utc_time(provider, name, status, occurred_at):
    [update] = provider.parse_webhook(payload("statuses")[name])

    assert (update.status, update.occurred_at) == (status, occurred_at)
    assert update.occurred_at.tzinfo is None
    assert (update.error_code, update.error_text) == (None, None)


def test_failed_status_carries_131049_error(provider):
    [update] = provider.parse_webhook(payload("statuses")["failed"])

    assert update.status is DeliveryStatus.FAILED
    assert update.error_code == "131049"
    assert update.error_text == (
        "This message was not delivered to maintain healthy ecosystem engagement."
    )
    assert update.callback_data == "order:1042:shipped"


def test_failed_status_joins_title_and_distinct_details(provider):
    webhook = payload("statuses")["failed"]
    status = webhook["entry"][0]["changes"][0]["value"]["statuses"][0]
    status["errors"] = [
        {"code": 131026, "title": "Message undeliverable", "error_data": {"details": "No WA"}}
    ]

    [update] = provider.parse_webhook(webhook)

    assert (update.error_code, update.error_text) == ("131026", "Message undeliverable: No WA")


def test_unknown_status_value_becomes_unknown(provider):
    webhook = payload("statuses")["read"]
    webhook["entry"][0]["changes"][0]["value"]["statuses"][0]["status"] = "played"

    [update] = provider.parse_webhook(webhook)

    assert update.status is DeliveryStatus.UNKNOWN


# --- webhook parsing: inbound messages (§1.8) ------------------------------------------


def test_text_message_is_parsed_with_profile_name(provider):
    webhook = payload("messages")["text"]

    [update] = provider.parse_webhook(webhook)

    assert update == InboundMessage(
        provider="meta",
        provider_message_id="wamid.HBgMOTE5ODEyMzQ1Njc4FQIAEhgUM0E0QTY1OTlBRUUwMzgxMDE0NEYA",
        from_phone="+919812345678",
        type="text",
        occurred_at=datetime(2025, 11, 24, 16, 0, 0),
        text="mera order kab aayega?",
        profile_name="Asha",
    )
    assert update.raw == webhook["entry"][0]["changes"][0]["value"]["messages"][0]


@pytest.mark.parametrize(
    "name, type_, text, button_payload",
    [
        ("button", "button", "Track order", "STATUS:1042"),
        ("interactive", "interactive", "Track order", "STATUS:1042"),
        ("list_reply", "interactive", "हिन्दी", "LANG:hi"),
    ],
)
def test_button_and_list_replies_carry_label_and_payload(
    provider, name, type_, text, button_payload
):
    [update] = provider.parse_webhook(payload("messages")[name])

    assert (update.type, update.text, update.button_payload) == (type_, text, button_payload)
    assert (update.from_phone, update.profile_name) == ("+919812345678", "Asha")


def test_media_message_is_kept_without_text(provider):
    webhook = payload("messages")["text"]
    message = webhook["entry"][0]["changes"][0]["value"]["messages"][0]
    del message["text"]
    message.update(type="image", image={"id": "1234", "mime_type": "image/jpeg"})

    [update] = provider.parse_webhook(webhook)

    assert (update.type, update.text, update.button_payload) == ("image", None, None)


def test_batched_webhook_yields_every_update_in_order(provider):
    webhook = payload("statuses")["sent"]
    webhook["entry"] += payload("messages")["text"]["entry"]
    webhook["entry"] += payload("statuses")["failed"]["entry"]

    updates = provider.parse_webhook(webhook)

    assert [type(u).__name__ for u in updates] == ["StatusUpdate", "InboundMessage", "StatusUpdate"]
    assert [getattr(u, "status", None) for u in updates] == ["sent", None, "failed"]


def test_user_preferences_stop_is_a_marketing_opt_out(provider):
    [update] = provider.parse_webhook(payload("other")["user_preferences"])
    assert isinstance(update, PreferenceUpdate)
    assert (update.phone, update.category, update.opted_in) == ("+919812345678", "marketing", False)
    assert update.occurred_at == datetime(2025, 11, 24, 16, 5)


def test_user_preferences_resume_is_a_marketing_opt_in(provider):
    webhook = payload("other")["user_preferences"]
    webhook["entry"][0]["changes"][0]["value"]["user_preferences"][0]["value"] = "resume"
    [update] = provider.parse_webhook(webhook)
    assert update.opted_in is True


def test_user_preferences_other_than_stop_or_resume_are_kept_raw_not_a_consent_change(provider):
    webhook = payload("other")["user_preferences"]
    pref = webhook["entry"][0]["changes"][0]["value"]["user_preferences"][0]
    pref["value"] = "signup"  # Meta documents it (PROVIDERS.md §9.2)

    [update] = provider.parse_webhook(webhook)

    assert isinstance(update, UnhandledItem)
    assert (update.kind, update.reason, update.phone) == (
        "user_preference",
        Unhandled.UNKNOWN_VALUE,
        "+919812345678",
    )
    assert update.raw == pref and "'signup'" in update.detail


def test_other_change_fields_are_kept_raw_as_unknown_fields(provider):
    webhook = payload("other")["user_preferences"]
    change = webhook["entry"][0]["changes"][0]
    change["field"] = "business_capability_update"

    [update] = provider.parse_webhook(webhook)

    assert (update.kind, update.reason, update.raw) == (
        "change:business_capability_update",
        Unhandled.UNKNOWN_FIELD,
        change,
    )


def test_account_change_fields_yield_account_news_for_the_alerts(provider):
    [news] = provider.parse_webhook(payload("other")["phone_number_quality_flagged"])
    assert isinstance(news, AccountNews)
    assert (news.kind, news.subject, news.severity) == (
        News.PROBLEM,
        "quality:15550783881",
        Severity.CRITICAL,
    )
    assert news.text == (
        "Meta FLAGGED the WhatsApp number 15550783881 for low quality (messaging limit now "
        "TIER_10K)"
    )
    assert news.occurred_at == datetime(2025, 11, 24, 16, 10)


@pytest.mark.parametrize(
    ("name", "kind", "subject"),
    [
        ("template_approved", News.CLEARED, "template:order_shipped:en"),
        ("phone_number_quality_unflagged", News.CLEARED, "quality:15550783881"),
        ("account_reinstated", News.CLEARED, "account"),
        ("phone_number_throughput_upgrade", News.NEUTRAL, "quality:15550783881"),
        ("account_partner_added", News.NEUTRAL, "account"),
    ],
)
def test_account_news_says_when_a_subject_is_fine_again_or_nothing_either_way(
    provider, name, kind, subject
):
    [news] = provider.parse_webhook(payload("other")[name])
    assert (news.kind, news.subject, news.text) == (kind, subject, None)


@pytest.mark.parametrize("field", ["business_username_updates", "business_username_update"])
def test_the_business_usernames_deletion_is_news_and_its_approval_clears_it(provider, field):
    """Meta's reference: `{display_phone_number, username, status}`, status approved,
    reserved or deleted (without `username`), field `business_username_updates`; the
    singular is the spelling some client libraries first shipped."""

    def update(value: dict) -> dict:
        change = {"field": field, "value": {"display_phone_number": "15550783881", **value}}
        return {
            "object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "time": 1764000000, "changes": [change]}],
        }

    [deleted] = provider.parse_webhook(update({"status": "deleted"}))
    [approved] = provider.parse_webhook(update({"username": "asha_sarees", "status": "approved"}))
    [reserved] = provider.parse_webhook(update({"username": "asha_sarees", "status": "reserved"}))
    assert (deleted.kind, deleted.subject, deleted.severity) == (
        News.PROBLEM,
        "username:15550783881",
        Severity.WARNING,
    )
    assert "username of 15550783881 was deleted" in deleted.text
    assert (approved.kind, approved.subject, approved.text) == (
        News.CLEARED,
        "username:15550783881",
        None,
    )
    assert reserved.kind == News.NEUTRAL


def test_an_account_change_in_an_unexpected_shape_still_yields_news(provider):
    webhook = payload("other")["template_rejected"]
    value = webhook["entry"][0]["changes"][0]["value"]
    value["other_info"] = "not an object"
    value["rejection_info"] = ["nor this"]
    value["reason"] = "NONE"

    [news] = provider.parse_webhook(webhook)

    assert (news.kind, news.subject) == (News.PROBLEM, "template:order_placed:hi")
    assert news.text == "template order_placed (hi) is REJECTED"


@pytest.mark.parametrize(
    ("code", "fact"),
    [
        (131047, Fact.WINDOW_CLOSED),
        (470, Fact.WINDOW_CLOSED),
        (131056, Fact.PAIR_RATE_LIMITED),
        (131049, Fact.MARKETING_CAP),
        (131050, Fact.MARKETING_STOPPED),
        (131026, None),
        (130429, None),
    ],
)
def test_codes_that_mean_more_than_failed_come_with_dakiyas_fact(provider, api, code, fact):
    expect_error(api, 400, json={"error": {"message": "x", "code": code}})

    error = send_error(provider)

    assert (error.code, error.fact) == (str(code), fact)
    assert MetaProvider.fact_of(str(code)) is fact  # the same words for a receipt's code


def test_system_errors_of_a_change_are_kept_raw_as_provider_errors(provider):
    webhook = payload("statuses")["sent"]
    value = webhook["entry"][0]["changes"][0]["value"]
    del value["statuses"]
    value["errors"] = [{"code": 130429, "title": "Rate limit hit"}]

    [update] = provider.parse_webhook(webhook)

    assert (update.kind, update.reason, update.raw) == (
        "error",
        Unhandled.PROVIDER_ERROR,
        value["errors"][0],
    )
    assert "130429 Rate limit hit" in update.detail


# --- webhook parsing: what Dakiya cannot read is kept raw, the rest is read ------------


def value_of(webhook: dict) -> dict:
    return webhook["entry"][0]["changes"][0]["value"]


def first_status(webhook: dict) -> dict:
    return value_of(webhook)["statuses"][0]


def first_message(webhook: dict) -> dict:
    return value_of(webhook)["messages"][0]


#: A broken part of a body -> (the kind kept raw, its place named in the detail).
UNREADABLE: dict[str, tuple[str, Callable[[dict], object], str, str]] = {
    "no-entry": ("statuses", lambda w: w.pop("entry"), "payload", r"payload\.entry"),
    "entry-not-list": ("statuses", lambda w: w.update(entry={"id": "1"}), "payload", "entry"),
    "entry-item-not-object": ("statuses", lambda w: w["entry"].insert(0, "oops"), "entry", ""),
    "changes-not-list": (
        "statuses",
        lambda w: w["entry"].insert(0, {"id": "1", "changes": "x"}),
        "entry",
        r"entry\[0\]\.changes",
    ),
    "change-without-field": (
        "statuses",
        lambda w: w["entry"][0]["changes"].insert(0, {"value": {}}),
        "change",
        r"changes\[0\]\.field",
    ),
    "change-without-value": (
        "statuses",
        lambda w: w["entry"][0]["changes"].insert(0, {"field": "messages"}),
        "change:messages",
        r"changes\[0\]\.value",
    ),
    "statuses-not-list": (
        "statuses",
        lambda w: value_of(w).update(messages={}),
        "message",
        r"value\.messages",
    ),
    "status-without-id": (
        "statuses",
        lambda w: value_of(w)["statuses"].insert(0, {"status": "sent", "timestamp": "1"}),
        "status",
        r"statuses\[0\]\.id",
    ),
    "status-id-not-string": (
        "statuses",
        lambda w: value_of(w)["statuses"].insert(0, {**first_status(w), "id": 42}),
        "status",
        r"statuses\[0\]\.id",
    ),
    "status-id-too-long": (
        "statuses",
        lambda w: value_of(w)["statuses"].insert(0, {**first_status(w), "id": "w" * 129}),
        "status",
        r"statuses\[0\]\.id",
    ),
    "timestamp-not-unix": (
        "statuses",
        lambda w: value_of(w)["statuses"].insert(0, {**first_status(w), "timestamp": "yesterday"}),
        "status",
        r"statuses\[0\]\.timestamp",
    ),
    "message-without-from-or-bsuid": (
        "messages",
        lambda w: value_of(w)["messages"].insert(
            0, {k: v for k, v in first_message(w).items() if k != "from"} | {"id": "wamid.2"}
        ),
        "message",
        r"messages\[0\]\.from",
    ),
    "text-without-body": (
        "messages",
        lambda w: value_of(w)["messages"].insert(
            0, {**first_message(w), "id": "wamid.2", "text": {}}
        ),
        "message",
        r"messages\[0\]\.text\.body",
    ),
}


@pytest.mark.parametrize(
    "family, break_it, kind, place", UNREADABLE.values(), ids=UNREADABLE.keys()
)
def test_an_unreadable_part_is_kept_raw_and_the_rest_of_the_body_is_read(
    provider, family, break_it, kind, place
):
    webhook = copy.deepcopy(payload(family)["sent" if family == "statuses" else "text"])
    good = provider.parse_webhook(copy.deepcopy(webhook))
    break_it(webhook)

    updates = provider.parse_webhook(webhook)

    kept = [u for u in updates if isinstance(u, UnhandledItem)]
    assert [(u.kind, u.reason) for u in kept] == [(kind, Unhandled.MALFORMED)]
    assert re.search(place, kept[0].detail), kept[0].detail
    if kind != "payload":  # the body itself was unreadable: nothing else to read
        assert [u for u in updates if not isinstance(u, UnhandledItem)] == good


@pytest.mark.parametrize("body", [[], "text", None, 7, {"object": "page", "entry": []}])
def test_json_that_is_not_a_whatsapp_webhook_is_kept_raw(provider, body):
    [update] = provider.parse_webhook(body)
    assert (update.kind, update.reason, update.raw) == ("payload", Unhandled.NOT_WHATSAPP, body)


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s.pop("timestamp"),  # Meta promises it, but a receipt is usable without
        lambda s: s.update(errors=["boom"]),
        lambda s: s.pop("recipient_id"),  # a username user's receipt (§9.1)
    ],
)
def test_a_receipt_missing_what_it_can_do_without_is_still_read(provider, change):
    webhook = payload("statuses")["failed"]
    change(first_status(webhook))

    [update] = provider.parse_webhook(webhook)

    assert isinstance(update, StatusUpdate) and update.provider_message_id


def test_a_message_with_unreadable_contacts_is_read_without_a_name(provider):
    webhook = payload("messages")["text"]
    value_of(webhook)["contacts"] = "Asha"

    [update] = provider.parse_webhook(webhook)

    assert (update.from_phone, update.profile_name) == ("+919812345678", None)


def test_a_username_users_message_without_from_takes_the_number_of_its_contact(provider):
    webhook = payload("messages")["text"]
    value_of(webhook)["contacts"][0]["user_id"] = "IN.13491208655302741918"
    message = first_message(webhook)
    del message["from"]
    message["from_user_id"] = "IN.13491208655302741918"

    [update] = provider.parse_webhook(webhook)

    assert isinstance(update, InboundMessage)
    assert (update.from_phone, update.profile_name) == ("+919812345678", "Asha")


def test_a_message_carries_the_senders_bsuid_parent_bsuid_and_username(provider):
    # Shape as in PROVIDERS.md §9.1: messages[].from_user_id, contacts[].user_id,
    # contacts[].parent_user_id and contacts[].profile.username.
    webhook = payload("messages")["text"]
    contact = value_of(webhook)["contacts"][0]
    contact["user_id"] = "IN.13491208655302741918"
    contact["parent_user_id"] = "IN.ENT.1349120865530274"
    contact["profile"]["username"] = "asha.shop"
    first_message(webhook)["from_user_id"] = "IN.13491208655302741918"

    [update] = provider.parse_webhook(webhook)

    assert isinstance(update, InboundMessage)
    assert (update.from_phone, update.from_user_id) == (
        "+919812345678",
        "IN.13491208655302741918",
    )
    assert (update.parent_user_id, update.username) == ("IN.ENT.1349120865530274", "asha.shop")


def test_a_receipt_names_the_recipients_bsuid(provider):
    # statuses[].recipient_user_id / recipient_parent_user_id, PROVIDERS.md §9.1.
    webhook = payload("statuses")["delivered"]
    status = value_of(webhook)["statuses"][0]
    status["recipient_user_id"] = "IN.13491208655302741918"
    status["recipient_parent_user_id"] = "IN.ENT.1349120865530274"

    [update] = provider.parse_webhook(webhook)

    assert (update.recipient_user_id, update.recipient_parent_user_id) == (
        "IN.13491208655302741918",
        "IN.ENT.1349120865530274",
    )


def test_a_bsuid_is_kept_whole_at_its_longest_and_never_cut(provider):
    # "CC." and up to 128 alphanumerics (§9.1): 131 characters stay as they are; a longer
    # value is not a BSUID and is dropped rather than cut into someone else's.
    longest = "IN." + "7" * 128
    webhook = payload("statuses")["delivered"]
    value_of(webhook)["statuses"][0]["recipient_user_id"] = longest
    value_of(webhook)["statuses"][0]["recipient_parent_user_id"] = "IN.ENT." + "1" * 160
    [update] = provider.parse_webhook(webhook)
    assert (update.recipient_user_id, update.recipient_parent_user_id) == (longest, None)


def test_a_real_message_names_the_bsuid_on_its_contact_only(provider):
    # pywa's tests/data/updates/callback_button.json (commit 0bcf2f19, 2026-08): `from` is
    # the phone, the BSUID and parent BSUID sit on the contact with that wa_id.
    path = PAYLOADS / "real" / "pywa__callback_button__button.json"
    [update] = provider.parse_webhook(json.loads(path.read_text()))
    assert (update.from_phone, update.from_user_id, update.parent_user_id) == (
        "+972987654321",
        "US.13491208655302741918",
        "US.ENT.11815799212886844830",
    )


def test_a_message_from_a_phone_only_sender_has_no_bsuid(provider):
    [update] = provider.parse_webhook(payload("messages")["text"])

    assert isinstance(update, InboundMessage)
    assert (update.from_user_id, update.parent_user_id, update.username) == (None, None, None)


def test_a_username_users_message_with_only_a_bsuid_is_read_as_from_that_bsuid(provider):
    webhook = payload("messages")["text"]
    value_of(webhook)["contacts"] = [
        {"profile": {"name": "Asha", "username": "@asha"}, "user_id": "IN.1349120865530274"}
    ]
    message = first_message(webhook)
    del message["from"]
    message["from_user_id"] = "IN.1349120865530274"

    [update] = provider.parse_webhook(webhook)

    assert isinstance(update, InboundMessage)
    assert (update.from_phone, update.from_user_id, update.username, update.profile_name) == (
        None,
        "IN.1349120865530274",
        "@asha",
        "Asha",
    )


def test_a_message_with_neither_a_number_nor_a_bsuid_is_kept_raw(provider):
    webhook = payload("messages")["text"]
    message = first_message(webhook)
    del message["from"]
    del value_of(webhook)["contacts"]

    [update] = provider.parse_webhook(webhook)

    assert (update.kind, update.reason, update.raw) == ("message", Unhandled.MALFORMED, message)
    assert "no phone number and no from_user_id" in update.detail


def test_an_interactive_message_meta_could_not_pass_on_is_read_and_its_error_kept(provider):
    webhook = payload("messages")["interactive"]
    message = first_message(webhook)
    del message["interactive"]
    message["errors"] = [
        {
            "code": 131000,
            "title": "Something went wrong",
            "message": "Something went wrong",
            "error_data": {"details": "Unsupported webhook payload"},
        }
    ]

    inbound, kept = provider.parse_webhook(webhook)

    assert isinstance(inbound, InboundMessage)
    assert (inbound.type, inbound.text, inbound.from_phone) == (
        "interactive",
        None,
        "+919812345678",
    )
    assert (kept.kind, kept.reason, kept.phone) == (
        "message",
        Unhandled.PROVIDER_ERROR,
        "+919812345678",
    )
    assert "131000" in kept.detail


def test_over_long_free_text_is_cut_to_fit_never_refused(provider):
    webhook = payload("messages")["button"]
    value_of(webhook)["contacts"][0]["profile"]["name"] = "A" * 1000
    first_message(webhook)["button"]["payload"] = "P" * 1000

    [update] = provider.parse_webhook(webhook)

    assert (len(update.profile_name), len(update.button_payload)) == (200, 512)


def test_a_marketing_template_routed_to_the_marketing_messages_api_posts_there(provider, api):
    """Same body as /messages (§9.3); a free-form text never goes there (templates only)."""
    message = shipped_template(marketing_api=True)
    api.post(
        SEND_URL.replace("/messages", "/marketing_messages"),
        match=[matchers.header_matcher(AUTH), matchers.json_params_matcher(message_body(message))],
        json=payload("send_responses")["accepted"],
    )
    assert provider.send(message).provider_message_id == WAMID
    text = OutboundMessage(message_id=2, to="+919812345678", callback_data="x", text="hi")
    assert provider.request_for(replace(text, marketing_api=True)).url == SEND_URL


def test_131009_means_not_synced_yet_on_the_marketing_messages_api_only(provider, api):
    error = {"error": {"message": "(#131009) Parameter value is not valid", "code": 131009}}
    api.post(SEND_URL.replace("/messages", "/marketing_messages"), status=400, json=error)
    api.post(SEND_URL, status=400, json=error)
    waiting = send_error(provider, shipped_template(marketing_api=True))
    assert (waiting.kind, waiting.retry_after) == (ErrorKind.RETRY, 600.0)
    assert send_error(provider).kind is ErrorKind.PERMANENT


def contacts_shared(card_origin: str | None) -> dict:
    """A username user's `contacts` message as Kapso's "request contact info" guide shows
    the one their tap on the button returns (docs.kapso.ai/docs/whatsapp/send-messages/
    request-contact-info, fetched 2026-12-04), in a webhook envelope."""
    webhook = payload("messages")["text"]
    value_of(webhook)["contacts"] = [{"profile": {"name": "Asha"}, "user_id": "US.134912086553"}]
    message = first_message(webhook)
    del message["from"], message["text"]
    card = {"phones": [{"phone": "+16505551234", "wa_id": "16505551234", "type": "CELL"}]}
    if card_origin:
        card["origin"] = card_origin
    message.update(type="contacts", from_user_id="US.134912086553", contacts=[card])
    return webhook


def test_a_number_shared_through_the_request_contact_button_is_the_senders(provider):
    [update] = provider.parse_webhook(contacts_shared("contact_request"))

    assert isinstance(update, InboundMessage)
    assert (update.from_phone, update.from_user_id) == (None, "US.134912086553")
    assert update.shared_phone == "+16505551234"


@pytest.mark.parametrize("origin", ["other", None])
def test_a_contact_card_shared_any_other_way_is_not_the_senders_number(provider, origin):
    [update] = provider.parse_webhook(contacts_shared(origin))
    assert update.shared_phone is None


def test_a_real_contacts_message_of_three_friends_names_no_number_of_the_sender(provider):
    # pywa's tests/data/updates/message.json "contacts" (commit 0bcf2f19, 2026-08): cards
    # without an origin; the sender is known by `from`, the cards are other people.
    path = PAYLOADS / "real" / "pywa__message__contacts.json"
    [update] = provider.parse_webhook(json.loads(path.read_text()))
    assert (update.from_phone, update.shared_phone) == ("+972987654321", None)


def test_the_request_for_a_number_is_metas_request_contact_info_message():
    # The body of Kapso's guide (same page as above), sent to a BSUID in `recipient`.
    message = OutboundMessage(
        message_id=1,
        to=None,
        callback_data="1",
        text="Please share your phone number so we can finish your request.",
        recipient_user_id="US.13491208655302741918",
        request_contact=True,
    )
    assert message_body(message) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "recipient": "US.13491208655302741918",
        "biz_opaque_callback_data": "1",  # ours, on every message (§1.3)
        "type": "interactive",
        "interactive": {
            "type": "request_contact_info",
            "body": {"text": "Please share your phone number so we can finish your request."},
            "action": {"name": "request_contact_info"},
        },
    }
