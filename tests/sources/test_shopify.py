"""Shopify order webhooks: base64 signature, topic -> kind, facts from real-shaped bodies."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from werkzeug.datastructures import Headers

from bot.core.models import EventKind
from bot.core.signing import sign_hmac
from bot.intake.sources.base import Ignored, PayloadError, SignatureError
from bot.intake.sources.shopify import ShopifySource

SECRET = "shpss_test_3f9a0c1d"
PAYLOADS = Path(__file__).parent.parent / "payloads" / "shopify"
BIG_ORDER_ID = "948873224560123457"  # above 2^53: a float would change its last digits


def raw(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def load(name: str) -> dict[str, Any]:
    return json.loads(raw(name))


def delivery(
    body: bytes | dict[str, Any], topic: str | None, secret: str = SECRET, **extra: str
) -> tuple[bytes, dict[str, str]]:
    """A body and the headers Shopify would send with it (PROVIDERS.md §3.2)."""
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Hmac-Sha256": sign_hmac(secret, body, "base64"),
        "X-Shopify-Shop-Domain": "rangrez-studio.myshopify.com",
        "X-Shopify-API-Version": "2025-10",
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
        "X-Shopify-Triggered-At": "2026-11-24T05:00:01.123456Z",
    }
    if topic is not None:
        headers["X-Shopify-Topic"] = topic
    headers.update(extra)
    return body, headers


def parse(body: bytes | dict[str, Any], topic: str | None, **extra: str) -> Any:
    body, headers = delivery(body, topic, **extra)
    source = ShopifySource(SECRET)
    source.verify(body, headers)
    return source.parse(body, headers)


def problems(body: bytes | dict[str, Any], topic: str | None, **extra: str) -> dict:
    with pytest.raises(PayloadError) as caught:
        parse(body, topic, **extra)
    return caught.value.fields


# --- signature ------------------------------------------------------------------------------


def test_delivery_signed_with_our_secret_verifies():
    ShopifySource(SECRET).verify(*delivery(raw("orders_create.json"), "orders/create"))


def test_signature_is_found_in_werkzeug_headers_whatever_the_case():
    body, headers = delivery(raw("orders_create.json"), "orders/create")
    lowered = Headers([(key.lower(), value) for key, value in headers.items()])
    ShopifySource(SECRET).verify(body, lowered)
    assert ShopifySource(SECRET).parse(body, lowered).kind is EventKind.PLACED


def test_delivery_without_a_signature_is_rejected():
    body, headers = delivery(raw("orders_create.json"), "orders/create")
    del headers["X-Shopify-Hmac-Sha256"]
    with pytest.raises(SignatureError):
        ShopifySource(SECRET).verify(body, headers)


@pytest.mark.parametrize("signature", ["", "bm90IGEgc2lnbmF0dXJl", "%%%not base64%%%"])
def test_delivery_with_a_bad_signature_is_rejected(signature):
    body, headers = delivery(raw("orders_create.json"), "orders/create")
    headers["X-Shopify-Hmac-Sha256"] = signature
    with pytest.raises(SignatureError):
        ShopifySource(SECRET).verify(body, headers)


def test_delivery_signed_with_another_secret_is_rejected():
    body, headers = delivery(raw("orders_create.json"), "orders/create", secret="another-shop")
    with pytest.raises(SignatureError):
        ShopifySource(SECRET).verify(body, headers)


def test_body_altered_after_signing_is_rejected():
    body, headers = delivery(raw("orders_create.json"), "orders/create")
    with pytest.raises(SignatureError):
        ShopifySource(SECRET).verify(body.replace(b'"1299.00"', b'"1.00"'), headers)


def test_hex_signature_is_rejected_because_shopify_signs_in_base64():
    body, headers = delivery(raw("orders_create.json"), "orders/create")
    headers["X-Shopify-Hmac-Sha256"] = sign_hmac(SECRET, body, "hex")
    with pytest.raises(SignatureError):
        ShopifySource(SECRET).verify(body, headers)


# --- topic -> kind ---------------------------------------------------------------------------


def fulfillment_with(shipment_status: str | None) -> dict[str, Any]:
    return load("fulfillments_update.json") | {"shipment_status": shipment_status}


@pytest.mark.parametrize(
    ("body", "topic", "kind"),
    [
        (load("orders_create.json"), "orders/create", EventKind.PLACED),
        (load("orders_create_cod.json"), "orders/create", EventKind.COD_CONFIRMATION),
        (load("orders_create.json"), "orders/paid", EventKind.CONFIRMED),
        (load("orders_cancelled.json"), "orders/cancelled", EventKind.CANCELLED),
        (load("orders_fulfilled.json"), "orders/fulfilled", EventKind.SHIPPED),
        (load("fulfillments_create.json"), "fulfillments/create", EventKind.SHIPPED),
        (fulfillment_with("out_for_delivery"), "fulfillments/update", EventKind.OUT_FOR_DELIVERY),
        (fulfillment_with("delivered"), "fulfillments/update", EventKind.DELIVERED),
        (fulfillment_with("in_transit"), "fulfillments/update", None),
        (fulfillment_with("attempted_delivery"), "fulfillments/update", None),
        (fulfillment_with("failure"), "fulfillments/update", None),
        (fulfillment_with(None), "fulfillments/update", None),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_each_handled_topic_maps_to_its_kind(body, topic, kind):
    event = parse(body, topic)
    assert (event.topic, event.kind) == (topic, kind)


def test_orders_create_with_cod_gateway_asks_for_cod_confirmation():
    event = parse(raw("orders_create_cod.json"), "orders/create")
    assert event.kind is EventKind.COD_CONFIRMATION
    assert event.order.status == "pending"


def test_cod_order_already_paid_is_only_placed():
    body = load("orders_create_cod.json") | {"financial_status": "paid"}
    assert parse(body, "orders/create").kind is EventKind.PLACED


def test_cod_order_is_confirmed_by_orders_paid_not_asked_again():
    assert parse(raw("orders_create_cod.json"), "orders/paid").kind is EventKind.CONFIRMED


@pytest.mark.parametrize(
    ("gateways", "is_cod"),
    [
        (["Cash on Delivery (COD)"], True),
        (["cash on delivery"], True),
        (["COD"], True),
        (["Razorpay Secure (UPI, Cards, Wallets, NetBanking)", "cod"], True),
        (["Razorpay Secure (UPI, Cards, Wallets, NetBanking)"], False),
        (["Barcode Pay"], False),  # "cod" inside a word is not cash on delivery
        ([], False),
        (None, False),
    ],
)
def test_pending_order_is_cod_only_when_a_gateway_names_cash_on_delivery(gateways, is_cod):
    body = load("orders_create.json") | {
        "financial_status": "pending",
        "payment_gateway_names": gateways,
    }
    expected = EventKind.COD_CONFIRMATION if is_cod else EventKind.PLACED
    assert parse(body, "orders/create").kind is expected


@pytest.mark.parametrize(
    "topic",
    [
        "orders/updated",
        "orders/edited",
        "orders/partially_fulfilled",
        "orders/delete",
        "refunds/create",
        "fulfillment_orders/order_routing_complete",
        "fulfillment_events/create",
    ],
)
def test_other_shopify_order_topics_are_ignored(topic):
    assert parse(raw("orders_create.json"), topic) == Ignored(f"topic not handled: {topic}")


@pytest.mark.parametrize("topic", [None, "", "order.created", "products/create", "ORDERS/CREATE"])
def test_missing_or_foreign_topic_is_a_payload_error_naming_the_header(topic):
    assert "X-Shopify-Topic" in problems(raw("orders_create.json"), topic)


# --- facts from real-shaped bodies -----------------------------------------------------------


def test_orders_create_payload_parses_to_its_order_and_customer_facts():
    event = parse(raw("orders_create.json"), "orders/create")

    assert event.source == "shopify"
    assert event.order.external_id == BIG_ORDER_ID
    assert event.order.number == "#1042"
    assert event.order.total == Decimal("1299.00")
    assert event.order.currency == "INR"
    assert event.order.status == "paid"
    assert event.order.status_url.startswith("https://rangrez-studio.myshopify.com/")
    assert event.order.tracking_number is None
    # customer.phone and the order phone are null: the shipping address has it, raw
    assert event.customer.phone == "098123 45678"
    assert event.customer.name == "Asha"
    assert event.customer.language == "hi-IN"
    assert event.customer.country == "IN"
    assert event.notification_key == ""
    assert event.payload == load("orders_create.json")


def test_big_order_ids_keep_every_digit():
    event = parse(raw("orders_create.json"), "orders/create")
    assert event.order.external_id == BIG_ORDER_ID
    assert str(int(float(BIG_ORDER_ID))) != BIG_ORDER_ID  # why ids are never floats
    assert event.payload["id"] == int(BIG_ORDER_ID)


def test_dedupe_key_is_the_webhook_id_and_the_event_id_is_kept():
    event = parse(raw("orders_create.json"), "orders/create")
    assert event.dedupe_key == "shopify:b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert event.external_event_id == "98880550-7158-44d4-b7cd-2c97c8a091b5"


def test_event_id_is_optional():
    body, headers = delivery(raw("orders_create.json"), "orders/create")
    del headers["X-Shopify-Event-Id"]
    assert ShopifySource(SECRET).parse(body, headers).external_event_id is None


def test_missing_webhook_id_is_a_payload_error_naming_the_header():
    body, headers = delivery(raw("orders_create.json"), "orders/create")
    del headers["X-Shopify-Webhook-Id"]
    with pytest.raises(PayloadError) as caught:
        ShopifySource(SECRET).parse(body, headers)
    assert caught.value.fields == {"X-Shopify-Webhook-Id": ["Missing header."]}


@pytest.mark.parametrize(
    ("customer_phone", "order_phone", "shipping_phone", "billing_phone", "expected"),
    [
        ("+919812345678", "+919800000001", "98000 00002", "98000 00003", "+919812345678"),
        (None, "+919800000001", "98000 00002", "98000 00003", "+919800000001"),
        (None, None, "98000 00002", "98000 00003", "98000 00002"),
        ("", " ", None, "98000 00003", "98000 00003"),
        (None, None, None, None, None),
    ],
)
def test_phone_comes_from_customer_then_order_then_shipping_then_billing(
    customer_phone, order_phone, shipping_phone, billing_phone, expected
):
    body = load("orders_create.json")
    body["customer"]["phone"] = customer_phone
    body["phone"] = order_phone
    body["shipping_address"]["phone"] = shipping_phone
    body["billing_address"]["phone"] = billing_phone
    assert parse(body, "orders/create").customer.phone == expected


def test_order_without_customer_or_shipping_address_uses_the_billing_address():
    body = load("orders_create.json") | {"customer": None, "shipping_address": None}
    body["billing_address"].update(first_name=None, name="Asha Rao", country_code="IN")
    customer = parse(body, "orders/create").customer
    assert (customer.phone, customer.name, customer.country) == (
        "+91 98123 45678",
        "Asha Rao",
        "IN",
    )


def test_orders_fulfilled_tracks_the_newest_live_fulfillment():
    event = parse(raw("orders_fulfilled.json"), "orders/fulfilled")

    assert event.kind is EventKind.SHIPPED
    assert event.order.external_id == BIG_ORDER_ID
    assert event.order.number == "#1042"
    assert event.order.tracking_number == "1490211882791"
    assert event.order.tracking_url == "https://www.delhivery.com/track/package/1490211882791"
    assert event.order.carrier == "Delhivery"
    assert event.notification_key == "5312871703236"


def test_orders_fulfilled_picks_by_creation_time_not_position():
    body = load("orders_fulfilled.json")
    older, newer = body["fulfillments"]
    older["status"] = "success"
    body["fulfillments"] = [newer, older]  # newer listed first
    assert parse(body, "orders/fulfilled").notification_key == str(newer["id"])


def test_orders_fulfilled_without_fulfillments_still_announces_shipping():
    body = load("orders_fulfilled.json") | {"fulfillments": []}
    event = parse(body, "orders/fulfilled")
    assert (event.kind, event.notification_key, event.order.tracking_number) == (
        EventKind.SHIPPED,
        "",
        None,
    )


def test_fulfillments_create_reads_order_tracking_and_destination():
    event = parse(raw("fulfillments_create.json"), "fulfillments/create")

    assert event.kind is EventKind.SHIPPED
    assert event.order.external_id == BIG_ORDER_ID
    assert event.order.number is None  # not in a fulfillment; the stored order has it
    assert event.order.tracking_number == "1490211882791"
    assert event.order.tracking_url == "https://www.delhivery.com/track/package/1490211882791"
    assert event.order.carrier == "Delhivery"
    assert event.customer.phone == "098123 45678"
    assert event.customer.name == "Asha"
    assert event.customer.country == "IN"
    assert event.notification_key == "5312871703236"


def test_fulfillment_without_destination_has_no_phone():
    body = load("fulfillments_create.json") | {"destination": None}
    assert parse(body, "fulfillments/create").customer.phone is None


def test_tracking_falls_back_to_the_tracking_lists():
    body = load("fulfillments_create.json") | {"tracking_number": None, "tracking_url": None}
    order = parse(body, "fulfillments/create").order
    assert order.tracking_number == "1490211882791"
    assert order.tracking_url == "https://www.delhivery.com/track/package/1490211882791"


def test_fulfillment_updates_are_keyed_by_fulfillment_id():
    event = parse(raw("fulfillments_update.json"), "fulfillments/update")
    assert event.kind is EventKind.OUT_FOR_DELIVERY
    assert event.notification_key == "5312871703236"
    assert event.dedupe_key == "shopify:b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"


# --- malformed bodies ------------------------------------------------------------------------


def test_invalid_json_is_a_payload_error_on_the_body():
    assert "body" in problems(b'{"id": 948873224560123457,', "orders/create")


def test_json_array_is_a_payload_error_on_the_body():
    assert problems(b"[]", "orders/create") == {"body": ["Must be a JSON object."]}


def test_order_without_id_is_a_payload_error_naming_id():
    body = load("orders_create.json")
    del body["id"]
    assert problems(body, "orders/create") == {"id": ["Missing data for required field."]}


def test_fulfillment_without_order_id_is_a_payload_error_naming_order_id():
    body = load("fulfillments_create.json")
    del body["order_id"]
    assert "order_id" in problems(body, "fulfillments/create")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": 9.48873224560123e17}, "id"),
        ({"id": True}, "id"),
        ({"total_price": "twelve hundred"}, "total_price"),
        ({"customer": "Asha"}, "customer"),
        ({"payment_gateway_names": "Cash on Delivery (COD)"}, "payment_gateway_names"),
        ({"shipping_address": {"phone": 9812345678}}, "shipping_address.phone"),
        ({"fulfillments": [{"tracking_number": "1490211882791"}]}, "fulfillments.0.id"),
    ],
)
def test_wrong_types_are_payload_errors_naming_the_field(change, field):
    body = load("orders_fulfilled.json") | change
    assert field in problems(body, "orders/fulfilled")


# --- abandoned checkouts (checkouts/create, checkouts/update) ---------------------------------


def test_open_checkout_is_a_cart_reminder_event_keyed_by_its_token():
    event = parse(raw("checkouts_create.json"), "checkouts/create")
    assert (event.kind, event.checkout_token, event.checkout_open) == (
        None,
        "9c2e4f3b7a1d8e6f5c4b3a2918273645",
        True,
    )
    assert event.order.external_id == "checkout:9c2e4f3b7a1d8e6f5c4b3a2918273645"
    assert event.order.status_url.startswith("https://rangrez-studio.myshopify.com/")
    assert event.dedupe_key == "shopify:b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert (event.customer.phone, event.customer.name) == ("+919812345678", "Asha")
    assert event.customer.marketing_consent is True


def test_completed_checkout_settles_the_reminder():
    body = {**load("checkouts_create.json"), "completed_at": "2026-11-25T11:40:00+05:30"}
    event = parse(body, "checkouts/update")
    assert (event.checkout_token, event.checkout_open) == (body["token"], False)


def test_open_checkout_without_a_phone_is_ignored():
    body = {
        **load("checkouts_create.json"),
        "customer": None,
        "shipping_address": None,
        "billing_address": None,
    }
    assert isinstance(parse(body, "checkouts/update"), Ignored)


def test_order_carries_the_checkout_token_it_came_from():
    event = parse(raw("orders_create.json"), "orders/create")
    assert (event.checkout_token, event.checkout_open) == (
        load("orders_create.json")["checkout_token"],
        False,
    )


# --- which number, which shipment (issue 16, item 2) ------------------------------------


def test_every_number_of_the_order_is_kept_in_the_order_they_are_tried():
    body = load("orders_create.json")
    body["customer"]["phone"] = "0000"
    body["phone"] = None
    body["shipping_address"]["phone"] = "98000 00002"
    body["billing_address"]["phone"] = "98000 00003"
    customer = parse(body, "orders/create").customer
    assert (customer.phone, customer.other_phones) == ("0000", ("98000 00002", "98000 00003"))


@pytest.mark.parametrize("status", ["failure", "cancelled", "error"])
def test_a_failed_or_cancelled_fulfillment_sends_nothing_and_no_tracking(status):
    body = load("fulfillments_create.json") | {"status": status}
    event = parse(body, "fulfillments/create")
    assert event.kind is None
    assert (event.order.tracking_number, event.order.tracking_url) == (None, None)
    update = parse(body | {"shipment_status": "in_transit"}, "fulfillments/update")
    assert update.kind is None and update.order.tracking_url is None


def test_orders_fulfilled_never_tracks_a_dead_fulfillment():
    body = load("orders_fulfilled.json")
    for fulfillment in body["fulfillments"]:
        fulfillment["status"] = "failure"
    event = parse(body, "orders/fulfilled")
    assert (event.kind, event.order.tracking_url, event.notification_key) == (
        EventKind.SHIPPED,
        None,
        "",
    )
