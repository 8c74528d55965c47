"""InteraktProvider against Interakt's documented wire format (shared/PROVIDERS.md §2),
faked at the HTTP transport with `responses`."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
import requests
import responses
from responses import matchers

from bot.core.config import Settings
from bot.core.signing import sign_hmac
from bot.delivery.providers.base import (
    ButtonParam,
    DeliveryStatus,
    ErrorKind,
    InboundMessage,
    OutboundMessage,
    ProviderError,
    StatusUpdate,
    TemplateCall,
    Unhandled,
    UnhandledItem,
)
from bot.delivery.providers.interakt import InteraktProvider

PAYLOADS = Path(__file__).parents[1] / "payloads" / "interakt"
SEND_URL = "https://api.interakt.ai/v1/public/message/"
# The dashboard key is already base64("<raw>:"); it must go out untouched (§2.1).
API_KEY = "dGVzdC1yYXcta2V5Og=="
AUTH = {"Authorization": f"Basic {API_KEY}"}
INTERAKT_ID = "dfc668a2-c06c-4e9a-a4fd-7b65bc1fdc84"


def payload(name: str) -> dict:
    return json.loads((PAYLOADS / f"{name}.json").read_text())


@pytest.fixture
def settings() -> Settings:
    return Settings(
        whatsapp_provider="interakt",
        interakt_api_key=API_KEY,
        interakt_webhook_secret="test-webhook-secret",
    )


@pytest.fixture
def provider(settings: Settings) -> InteraktProvider:
    return InteraktProvider(settings)


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


def expect_send(api: responses.RequestsMock, body: dict, reply: str = "template_created") -> None:
    api.post(
        SEND_URL,
        status=201,
        match=[matchers.header_matcher(AUTH), matchers.json_params_matcher(body)],
        json=payload("send_responses")[reply],
    )


def send_error(provider: InteraktProvider, message: OutboundMessage | None = None):
    with pytest.raises(ProviderError) as caught:
        provider.send(message or shipped_template())
    return caught.value


# --- send: request bodies (§2.2) -------------------------------------------------------


def test_template_send_posts_documented_body(provider, api):
    expect_send(
        api,
        {
            "fullPhoneNumber": "919812345678",
            "callbackData": "order:1042:shipped",
            "type": "Template",
            "template": {
                "name": "order_shipped",
                "languageCode": "hi",
                "headerValues": ["#1042"],
                "bodyValues": ["Asha", "#1042", "₹1,299"],
                "buttonValues": {"0": ["track/1042"]},
            },
        },
    )

    assert provider.send(shipped_template()).provider_message_id == INTERAKT_ID


def test_template_without_header_or_url_buttons_omits_those_keys(provider, api):
    expect_send(
        api,
        {
            "fullPhoneNumber": "919812345678",
            "callbackData": "order:1042:confirmed",
            "type": "Template",
            "template": {"name": "order_confirmed", "languageCode": "en", "bodyValues": ["Asha"]},
        },
    )
    template = TemplateCall(
        "order_confirmed",
        "en",
        body=("Asha",),
        buttons=(ButtonParam(index=0, sub_type="quick_reply", value="STATUS:1042"),),
    )

    provider.send(shipped_template(template=template, callback_data="order:1042:confirmed"))


def test_text_send_posts_documented_body(provider, api):
    expect_send(
        api,
        {
            "fullPhoneNumber": "919812345678",
            "callbackData": "reply:abc",
            "type": "Text",
            "data": {"message": "Your order is out for delivery."},
        },
        reply="text_queued",
    )
    message = OutboundMessage(
        message_id=9,
        to="+919812345678",
        callback_data="reply:abc",
        text="Your order is out for delivery.",
    )

    result = provider.send(message)

    assert result.provider_message_id == "3f0e6a9b-2c4d-4e8f-9a1b-5c6d7e8f9a0b"


def test_send_uses_configured_base_url_and_timeout(settings, api):
    provider = InteraktProvider(
        settings.replace(interakt_api_base_url="http://127.0.0.1:8098", provider_timeout_seconds=3)
    )
    api.post(
        "http://127.0.0.1:8098/v1/public/message/",
        status=201,
        json=payload("send_responses")["template_created"],
    )

    provider.send(shipped_template())

    assert api.calls[0].request.req_kwargs["timeout"] == 3


def test_any_2xx_with_result_true_is_accepted(provider, api):
    api.post(SEND_URL, status=200, json=payload("send_responses")["template_created"])

    assert provider.send(shipped_template()).provider_message_id == INTERAKT_ID


# --- send: outcomes and errors (§2.2, §2.4, §2.6) --------------------------------------


def test_result_false_is_permanent_with_interakt_message(provider, api):
    api.post(SEND_URL, status=201, json={"result": False, "message": "Template is not approved"})

    error = send_error(provider)

    assert (error.kind, error.text) == (ErrorKind.PERMANENT, "Template is not approved")


@pytest.mark.parametrize(
    "reply",
    [{"json": {"result": True, "message": "Message created successfully"}}, {"body": "Created"}],
    ids=["no-id", "not-json"],
)
def test_accepted_without_an_id_is_ambiguous(provider, api, reply):
    api.post(SEND_URL, status=201, **reply)

    assert send_error(provider).kind is ErrorKind.AMBIGUOUS


def test_rate_limit_is_rate_limited_with_retry_after(provider, api):
    api.post(
        SEND_URL,
        status=429,
        json=payload("send_responses")["rate_limited"],
        headers={"Retry-After": "12"},
    )

    error = send_error(provider)

    assert (error.kind, error.code, error.retry_after) == (ErrorKind.RATE_LIMITED, "http_429", 12)
    assert error.text == "Rate limit exceeded for this resource"


@pytest.mark.parametrize(
    "status, kind",
    [
        (400, ErrorKind.PERMANENT),
        (401, ErrorKind.PERMANENT),
        (403, ErrorKind.PERMANENT),
        (404, ErrorKind.PERMANENT),
        (422, ErrorKind.PERMANENT),
        (429, ErrorKind.RATE_LIMITED),
        (500, ErrorKind.RETRY),
        (502, ErrorKind.RETRY),
        (503, ErrorKind.RETRY),
    ],
)
def test_http_status_decides_the_error_kind(provider, api, status, kind):
    api.post(SEND_URL, status=status, json={"result": False, "message": f"status {status}"})

    error = send_error(provider)

    assert (error.kind, error.code, error.text) == (kind, f"http_{status}", f"status {status}")


@pytest.mark.parametrize(
    "name, status, text",
    [
        (
            "template_not_found",
            400,
            "No approved template found with name order_shiped and language hi",
        ),
        ("unauthorized", 401, "Invalid API key"),
    ],
)
def test_client_errors_are_permanent_with_the_body_message(provider, api, name, status, text):
    api.post(SEND_URL, status=status, json=payload("send_responses")[name])

    error = send_error(provider)

    assert (error.kind, error.text, error.retry_after) == (ErrorKind.PERMANENT, text, None)


def test_non_json_5xx_is_retried(provider, api):
    api.post(SEND_URL, status=502, body="<html>Bad Gateway</html>")

    error = send_error(provider)

    assert error.kind is ErrorKind.RETRY
    assert "Bad Gateway" in error.text


@pytest.mark.parametrize(
    "exc, kind",
    [
        (requests.ConnectTimeout("connect timed out"), ErrorKind.RETRY),
        (requests.ReadTimeout("read timed out"), ErrorKind.AMBIGUOUS),
    ],
    ids=["connect-timeout", "read-timeout"],
)
def test_network_failures_are_classified_like_meta(provider, api, exc, kind):
    api.post(SEND_URL, body=exc)

    assert send_error(provider).kind is kind


# --- webhook signature (§2.5) ----------------------------------------------------------

BODY = json.dumps(payload("webhooks")["api_delivered"]).encode()
GOOD = "sha256=" + sign_hmac("test-webhook-secret", BODY)


@pytest.mark.parametrize(
    "headers, valid",
    [
        ({"Interakt-Signature": GOOD}, True),
        ({"X-Interakt-Signature": GOOD}, True),
        ({"interakt-signature": GOOD}, True),
        ({"Interakt-Signature": "sha256=" + sign_hmac("another-secret", BODY)}, False),
        ({}, False),
        ({"Interakt-Signature": GOOD.removeprefix("sha256=")}, False),
        ({"Interakt-Signature": "sha1=" + GOOD.removeprefix("sha256=")}, False),
        ({"X-Hub-Signature-256": GOOD}, False),
    ],
    ids=[
        "good",
        "x-prefixed-header",
        "lowercase-header",
        "wrong-secret",
        "missing",
        "no-prefix",
        "wrong-prefix",
        "meta-header",
    ],
)
def test_webhook_signature_is_checked_over_raw_body(provider, headers, valid):
    assert provider.verify_webhook(BODY, headers) is valid


def test_unconfigured_webhook_secret_never_verifies(settings):
    provider = InteraktProvider(settings.replace(interakt_webhook_secret=""))

    unkeyed = "sha256=" + sign_hmac("", BODY)

    assert provider.verify_webhook(BODY, {"Interakt-Signature": unkeyed}) is False


# --- webhook parsing: statuses (§2.5) --------------------------------------------------


def test_delivered_status_is_parsed_with_callback_data(provider):
    webhook = payload("webhooks")["api_delivered"]

    [update] = provider.parse_webhook(webhook)

    assert update == StatusUpdate(
        provider="interakt",
        provider_message_id=INTERAKT_ID,
        status=DeliveryStatus.DELIVERED,
        occurred_at=datetime(2022, 6, 3, 5, 43, 33, 848000),
        recipient="+917003705584",
        callback_data="order:1042:shipped",
    )
    assert update.raw == webhook


@pytest.mark.parametrize(
    "name, status, occurred_at",
    [
        ("api_sent", DeliveryStatus.SENT, datetime(2022, 6, 3, 5, 43, 32, 530227)),
        ("api_read", DeliveryStatus.READ, datetime(2022, 6, 3, 5, 50, 1, 120000)),
        ("campaign_delivered", DeliveryStatus.DELIVERED, datetime(2022, 6, 3, 6, 10, 5)),
    ],
)
def test_status_time_comes_from_the_matching_field(provider, name, status, occurred_at):
    [update] = provider.parse_webhook(payload("webhooks")[name])

    assert (update.status, update.occurred_at) == (status, occurred_at)
    assert (update.error_code, update.error_text) == (None, None)


def test_failed_status_carries_channel_error(provider):
    [update] = provider.parse_webhook(payload("webhooks")["api_failed"])

    assert update.status is DeliveryStatus.FAILED
    assert update.occurred_at == datetime(2022, 6, 3, 5, 43, 34, 210031)
    assert (update.error_code, update.error_text) == (
        "1013",
        "Recipient is not a valid WhatsApp user",
    )
    assert update.callback_data == "order:1042:shipped"


def test_campaign_status_has_no_callback_data(provider):
    [update] = provider.parse_webhook(payload("webhooks")["campaign_delivered"])

    assert update.callback_data is None


def test_missing_delivered_time_falls_back_to_the_webhook_timestamp(provider):
    webhook = payload("webhooks")["api_delivered"]
    webhook["data"]["message"]["delivered_at_utc"] = None

    [update] = provider.parse_webhook(webhook)

    assert update.occurred_at == datetime(2022, 6, 3, 5, 43, 33, 930227)


def test_time_with_an_offset_is_normalised_to_naive_utc(provider):
    webhook = payload("webhooks")["api_delivered"]
    webhook["data"]["message"]["delivered_at_utc"] = "2022-06-03T11:13:33+05:30"

    [update] = provider.parse_webhook(webhook)

    assert update.occurred_at == datetime(2022, 6, 3, 5, 43, 33)


# --- webhook parsing: inbound messages (§2.5) ------------------------------------------


def test_text_message_is_parsed(provider):
    webhook = payload("webhooks")["received_text"]

    [update] = provider.parse_webhook(webhook)

    assert update == InboundMessage(
        provider="interakt",
        provider_message_id="60076f05-da52-4dd1-b813-36223c1eded7",
        from_phone="+917003705584",
        type="text",
        occurred_at=datetime(2022, 6, 3, 5, 57, 57, 359000),
        text="Thank you",
        profile_name="SKGG",
    )
    assert update.raw == webhook


def test_button_reply_is_read_leniently_from_its_label(provider):
    [update] = provider.parse_webhook(payload("webhooks")["received_button"])

    assert (update.type, update.text, update.button_payload) == (
        "interactive",
        "Track order",
        "Track order",
    )


@pytest.mark.parametrize(
    "name, kind",
    [("api_clicked", "message_api_clicked"), ("webhook_test", "Webhook Test")],
    ids=["click", "dashboard-test"],
)
def test_types_we_do_not_act_on_are_kept_raw(provider, name, kind):
    webhook = payload("webhooks")[name]

    [update] = provider.parse_webhook(webhook)

    assert (update.kind, update.reason, update.raw) == (kind, Unhandled.UNKNOWN_TYPE, webhook)


def test_account_alert_is_kept_raw(provider):
    alert = {"version": "1.0", "timestamp": "2022-06-03T05:00:00", "type": "account_alerts"}

    [update] = provider.parse_webhook(alert)

    assert (update.kind, update.reason) == ("account_alerts", Unhandled.UNKNOWN_TYPE)


# --- webhook parsing: what Dakiya cannot read is kept raw ------------------------------

UNREADABLE: dict[str, tuple[str, Callable[[dict], object], str]] = {
    "no-type": ("api_delivered", lambda w: w.pop("type"), r"payload\.type"),
    "type-not-string": ("api_delivered", lambda w: w.update(type=3), r"payload\.type"),
    "no-data": ("api_delivered", lambda w: w.pop("data"), r"payload\.data"),
    "message-not-object": (
        "api_delivered",
        lambda w: w["data"].update(message="hi"),
        r"payload\.data\.message",
    ),
    "status-without-id": (
        "api_delivered",
        lambda w: w["data"]["message"].pop("id"),
        r"message\.id",
    ),
    "meta-data-not-object": (
        "api_delivered",
        lambda w: w["data"]["message"].update(meta_data="x"),
        r"message\.meta_data",
    ),
    "status-time-not-iso": (
        "api_delivered",
        lambda w: w["data"]["message"].update(delivered_at_utc="soon"),
        r"message\.delivered_at_utc",
    ),
    "inbound-without-customer": (
        "received_text",
        lambda w: w["data"].pop("customer"),
        r"payload\.data\.customer",
    ),
    "inbound-without-phone": (
        "received_text",
        lambda w: w["data"]["customer"].pop("channel_phone_number"),
        "channel_phone_number",
    ),
    "inbound-phone-not-digits": (
        "received_text",
        lambda w: w["data"]["customer"].update(channel_phone_number="Asha"),
        "channel_phone_number",
    ),
}


@pytest.mark.parametrize("name, break_it, place", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_an_unreadable_webhook_is_kept_raw_with_the_place_named(provider, name, break_it, place):
    webhook = copy.deepcopy(payload("webhooks")[name])
    break_it(webhook)

    [update] = provider.parse_webhook(webhook)

    assert isinstance(update, UnhandledItem)
    assert (update.reason, update.raw) == (Unhandled.MALFORMED, webhook)
    assert re.search(place, update.detail), update.detail


def test_a_receipt_without_a_timestamp_is_still_read(provider):
    webhook = payload("webhooks")["api_sent"]
    del webhook["timestamp"]

    [update] = provider.parse_webhook(webhook)

    assert isinstance(update, StatusUpdate) and update.status is DeliveryStatus.SENT


@pytest.mark.parametrize("body", [[], "text", None, 7])
def test_json_that_is_not_an_object_is_kept_raw(provider, body):
    [update] = provider.parse_webhook(body)
    assert (update.kind, update.reason, update.raw) == ("payload", Unhandled.NOT_WHATSAPP, body)
