"""WooCommerce order webhooks: signature and unsigned ping, status -> kind, facts from v3 orders."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.core.models import EventKind
from bot.core.signing import sign_hmac
from bot.intake.sources.base import Ignored, PayloadError, SignatureError
from bot.intake.sources.woocommerce import WooCommerceSource

SECRET = "wc-webhook-secret-Q6tuhq12"
PAYLOADS = Path(__file__).parent.parent / "payloads" / "woocommerce"
DELIVERY_ID = "36e520ebabc2fa725092ff4a47acedf2"
PING_HEADERS = {
    "Content-Type": "application/x-www-form-urlencoded",
    "User-Agent": "WooCommerce/9.4.2 Hookshot (WordPress/6.7.1)",
}


def raw(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def load(name: str) -> dict[str, Any]:
    return json.loads(raw(name))


def delivery(
    body: bytes | dict[str, Any], topic: str | None, secret: str = SECRET
) -> tuple[bytes, dict[str, str]]:
    """A body and the headers WooCommerce's deliver() sends with it (PROVIDERS.md §4)."""
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "WooCommerce/9.4.2 Hookshot (WordPress/6.7.1)",
        "X-WC-Webhook-Source": "https://rangrez.example.in/",
        "X-WC-Webhook-ID": "3",
        "X-WC-Webhook-Delivery-ID": DELIVERY_ID,
        "X-WC-Webhook-Signature": sign_hmac(secret, body, "base64"),
    }
    if topic is not None:
        resource, _, event = topic.partition(".")
        headers |= {
            "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Resource": resource,
            "X-WC-Webhook-Event": event,
        }
    return body, headers


def parse(body: bytes | dict[str, Any], topic: str | None) -> Any:
    body, headers = delivery(body, topic)
    source = WooCommerceSource(SECRET)
    source.verify(body, headers)
    return source.parse(body, headers)


def problems(body: bytes | dict[str, Any], topic: str | None) -> dict:
    with pytest.raises(PayloadError) as caught:
        parse(body, topic)
    return caught.value.fields


# --- signature and ping ----------------------------------------------------------------------


def test_delivery_signed_with_our_secret_verifies():
    WooCommerceSource(SECRET).verify(*delivery(raw("order_created.json"), "order.created"))


def test_delivery_without_a_signature_is_rejected():
    body, headers = delivery(raw("order_created.json"), "order.created")
    del headers["X-WC-Webhook-Signature"]
    with pytest.raises(SignatureError):
        WooCommerceSource(SECRET).verify(body, headers)


@pytest.mark.parametrize("signature", ["", "5poyFy4qB6fdvvT5pGbefZmfkpL48uD47F0WYwfmpo4="])
def test_delivery_with_a_bad_signature_is_rejected(signature):
    body, headers = delivery(raw("order_created.json"), "order.created")
    headers["X-WC-Webhook-Signature"] = signature
    with pytest.raises(SignatureError):
        WooCommerceSource(SECRET).verify(body, headers)


def test_delivery_signed_with_another_secret_is_rejected():
    body, headers = delivery(raw("order_created.json"), "order.created", secret="other-webhook")
    with pytest.raises(SignatureError):
        WooCommerceSource(SECRET).verify(body, headers)


def test_body_altered_after_signing_is_rejected():
    body, headers = delivery(raw("order_created.json"), "order.created")
    with pytest.raises(SignatureError):
        WooCommerceSource(SECRET).verify(body.replace(b'"cod"', b'"bacs"'), headers)


def test_signature_header_is_matched_whatever_its_case():
    body, headers = delivery(raw("order_created.json"), "order.created")
    lowered = {key.lower(): value for key, value in headers.items()}
    WooCommerceSource(SECRET).verify(body, lowered)
    assert WooCommerceSource(SECRET).parse(body, lowered).kind is EventKind.COD_CONFIRMATION


def test_creation_ping_is_accepted_unsigned_and_ignored():
    source = WooCommerceSource(SECRET)
    source.verify(b"webhook_id=3", PING_HEADERS)
    assert source.parse(b"webhook_id=3", PING_HEADERS) == Ignored("ping")


@pytest.mark.parametrize(
    "body",
    [
        b"webhook_id=",
        b"webhook_id=3&status=completed",
        b"webhook_id=3\n",
        b"webhook_id=abc",
        b"webhook=3",
        b'{"webhook_id": 3}',
        b"",
    ],
)
def test_any_other_unsigned_body_is_rejected(body):
    with pytest.raises(SignatureError):
        WooCommerceSource(SECRET).verify(body, PING_HEADERS)


def test_ping_shaped_body_with_webhook_headers_must_be_signed():
    headers = PING_HEADERS | {"X-WC-Webhook-Topic": "order.created"}
    with pytest.raises(SignatureError):
        WooCommerceSource(SECRET).verify(b"webhook_id=3", headers)


# --- topic and status -> kind ----------------------------------------------------------------


def order_with(status: str, payment_method: str = "razorpay") -> dict[str, Any]:
    return load("order_created.json") | {"status": status, "payment_method": payment_method}


@pytest.mark.parametrize(
    ("topic", "status", "payment_method", "kind"),
    [
        ("order.created", "pending", "razorpay", EventKind.PLACED),
        ("order.created", "on-hold", "bacs", EventKind.PLACED),
        ("order.created", "processing", "razorpay", EventKind.CONFIRMED),
        ("order.created", "pending", "cod", EventKind.COD_CONFIRMATION),
        ("order.created", "processing", "cod", EventKind.COD_CONFIRMATION),
        ("order.created", "failed", "cod", None),
        ("order.created", "checkout-draft", "razorpay", None),
        ("order.updated", "processing", "razorpay", EventKind.CONFIRMED),
        ("order.updated", "processing", "cod", EventKind.COD_CONFIRMATION),
        ("order.updated", "completed", "razorpay", EventKind.SHIPPED),
        ("order.updated", "shipped", "razorpay", EventKind.SHIPPED),
        ("order.updated", "out-for-delivery", "cod", EventKind.OUT_FOR_DELIVERY),
        ("order.updated", "delivered", "cod", EventKind.DELIVERED),
        ("order.updated", "cancelled", "razorpay", EventKind.CANCELLED),
        ("order.updated", "refunded", "razorpay", EventKind.REFUNDED),
        ("order.updated", "pending", "razorpay", None),
        ("order.updated", "on-hold", "razorpay", None),
        ("order.updated", "failed", "razorpay", None),
        ("order.updated", "trash", "razorpay", None),
    ],
)
def test_status_and_topic_map_to_a_kind(topic, status, payment_method, kind):
    event = parse(order_with(status, payment_method), topic)
    assert (event.topic, event.kind) == (topic, kind)


def test_unhandled_status_keeps_the_event_with_no_kind():
    event = parse(order_with("failed"), "order.updated")
    assert event.kind is None
    assert event.order.status == "failed"


@pytest.mark.parametrize(
    "topic",
    [
        "order.deleted",
        "order.restored",
        "product.created",
        "product.updated",
        "customer.created",
        "coupon.deleted",
        "action.woocommerce_order_status_changed",
    ],
)
def test_other_woocommerce_topics_are_ignored(topic):
    assert parse(b'{"id": 4750}', topic) == Ignored(f"topic not handled: {topic}")


@pytest.mark.parametrize("topic", [None, "", "orders/create", "order.shipped", "action.", "order"])
def test_missing_or_unknown_topic_is_a_payload_error_naming_the_header(topic):
    assert "X-WC-Webhook-Topic" in problems(raw("order_created.json"), topic)


# --- facts from real-shaped bodies -----------------------------------------------------------


def test_order_created_payload_parses_to_its_facts():
    body = raw("order_created.json")
    event = parse(body, "order.created")

    assert event.source == "woocommerce"
    assert event.topic == "order.created"
    assert event.kind is EventKind.COD_CONFIRMATION
    assert event.order.external_id == "4750"
    assert event.order.number == "4750"
    assert event.order.total == Decimal("1299.00")
    assert event.order.currency == "INR"
    assert event.order.status == "processing"
    assert event.order.tracking_number is None
    assert event.customer.phone == "09812345678"  # raw: normalised later
    assert event.customer.name == "Asha"
    assert event.customer.country == "IN"
    assert event.customer.language is None
    assert event.notification_key == ""
    assert event.external_event_id == DELIVERY_ID
    assert event.payload == load("order_created.json")


def test_dedupe_key_is_delivery_id_and_body_hash():
    body = raw("order_created.json")
    event = parse(body, "order.created")
    digest = hashlib.sha256(body).hexdigest()[:16]
    assert event.dedupe_key == f"woocommerce:{DELIVERY_ID}:{digest}"


def test_same_delivery_id_with_a_different_body_gets_a_different_key():
    first = parse(order_with("processing"), "order.updated")
    second = parse(order_with("completed"), "order.updated")
    assert first.dedupe_key != second.dedupe_key


def test_missing_delivery_id_is_a_payload_error_naming_the_header():
    body, headers = delivery(raw("order_created.json"), "order.created")
    del headers["X-WC-Webhook-Delivery-ID"]
    with pytest.raises(PayloadError) as caught:
        WooCommerceSource(SECRET).parse(body, headers)
    assert caught.value.fields == {"X-WC-Webhook-Delivery-ID": ["Missing header."]}


def test_phone_falls_back_to_the_shipping_phone():
    body = load("order_created.json")
    body["billing"]["phone"] = ""
    body["shipping"]["phone"] = "+91 98123 45678"
    assert parse(body, "order.created").customer.phone == "+91 98123 45678"


def test_order_without_any_phone_has_none():
    body = load("order_created.json")
    body["billing"]["phone"] = ""
    del body["shipping"]["phone"]  # older WooCommerce has no shipping.phone
    assert parse(body, "order.created").customer.phone is None


def test_completed_order_carries_the_newest_shipment_tracking():
    event = parse(raw("order_updated_completed.json"), "order.updated")

    assert event.kind is EventKind.SHIPPED
    assert event.order.tracking_number == "EK123456789IN"
    assert event.order.carrier == "india-post"
    assert event.order.tracking_url is None
    assert event.notification_key == ""


def test_custom_tracking_provider_and_link_are_used():
    body = load("order_updated_completed.json")
    tracking = next(m for m in body["meta_data"] if m["key"] == "_wc_shipment_tracking_items")
    tracking["value"] = tracking["value"][:1]
    order = parse(body, "order.updated").order
    assert order.tracking_number == "1490211882734"
    assert order.carrier == "Delhivery"
    assert order.tracking_url == "https://www.delhivery.com/track/package/1490211882734"


@pytest.mark.parametrize("value", ['a:1:{i:0;s:3:"abc";}', None, [], [{"tracking_provider": "x"}]])
def test_tracking_meta_of_an_unknown_shape_means_no_tracking(value):
    body = load("order_updated_completed.json")
    tracking = next(m for m in body["meta_data"] if m["key"] == "_wc_shipment_tracking_items")
    tracking["value"] = value
    event = parse(body, "order.updated")
    assert (event.kind, event.order.tracking_number) == (EventKind.SHIPPED, None)


# --- malformed bodies ------------------------------------------------------------------------


def test_invalid_json_is_a_payload_error_on_the_body():
    assert "body" in problems(b'{"id": 4750, "status": ', "order.created")


def test_json_array_is_a_payload_error_on_the_body():
    assert problems(b'[{"id": 4750}]', "order.created") == {"body": ["Must be a JSON object."]}


@pytest.mark.parametrize("field", ["id", "status"])
def test_missing_required_field_is_named(field):
    body = load("order_created.json")
    del body[field]
    assert problems(body, "order.created") == {field: ["Missing data for required field."]}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": [4750]}, "id"),
        ({"status": 1}, "status"),
        ({"total": "lots"}, "total"),
        ({"billing": "Asha Rao"}, "billing"),
        ({"billing": {"phone": 9812345678}}, "billing.phone"),
        ({"meta_data": {"key": "value"}}, "meta_data"),
    ],
)
def test_wrong_types_are_payload_errors_naming_the_field(change, field):
    body = load("order_created.json") | change
    assert field in problems(body, "order.created")
