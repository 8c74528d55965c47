"""A JSON body nested deeper than bot.core.jsonbody.MAX_DEPTH levels is a 400 naming the depth
on every endpoint that reads JSON, signed webhooks and the admin API alike (never a 500
from a RecursionError), and nothing is stored."""

from __future__ import annotations

import json

import pytest

from bot.core.models import Customer, InboundMessage, Order, StatusEvent
from tests.conftest import ADMIN, SECRETS

MAX_DEPTH = 64  # bot.core.jsonbody.MAX_DEPTH, as the README promises
DEPTHS = [100_000, 900, MAX_DEPTH + 1]
WOO_HEADERS = {
    "X-WC-Webhook-Source": "https://shop.example.in/",
    "X-WC-Webhook-Topic": "order.created",
    "X-WC-Webhook-Resource": "order",
    "X-WC-Webhook-Event": "created",
    "X-WC-Webhook-ID": "3",
    "X-WC-Webhook-Delivery-ID": "d-1",
}


def nested(depth: int) -> bytes:
    """An object whose "entry" holds arrays `depth` levels deep in all."""
    inner = "[" * (depth - 1) + "]" * (depth - 1)
    return ('{"object": "whatsapp_business_account", "entry": ' + inner + "}").encode()


def assert_refused_for_depth(response, code: str) -> None:
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    error = response.get_json()["error"]
    assert error["code"] == code and f"{MAX_DEPTH} levels" in error["message"]


@pytest.mark.parametrize("depth", DEPTHS)
def test_whatsapp_webhooks_refuse_deep_nesting_with_400(client, sign, depth):
    raw = nested(depth)
    meta = client.post(
        "/webhooks/whatsapp/meta",
        data=raw,
        headers={"X-Hub-Signature-256": "sha256=" + sign(SECRETS["meta_app_secret"], raw)},
        content_type="application/json",
    )
    interakt = client.post(
        "/webhooks/whatsapp/interakt",
        data=raw,
        headers={"Interakt-Signature": "sha256=" + sign(SECRETS["interakt_webhook_secret"], raw)},
        content_type="application/json",
    )
    for response in (meta, interakt):
        assert_refused_for_depth(response, "invalid_payload")
    assert not InboundMessage.select().exists() and not StatusEvent.select().exists()


@pytest.mark.parametrize("depth", DEPTHS)
def test_order_webhooks_refuse_deep_nesting_with_400(client, sign, payload, depth):
    raw = nested(depth)
    generic = client.post(
        "/webhooks/orders",
        data=raw,
        headers={"X-Signature-256": "sha256=" + sign(SECRETS["order_webhook_secret"], raw)},
        content_type="application/json",
    )
    assert_refused_for_depth(generic, "invalid_payload")
    # A genuine WooCommerce order with the nesting hidden in a field it does not read.
    order = {**payload("woocommerce/order_created"), "meta_data": "DEEP"}
    raw = json.dumps(order).replace('"DEEP"', "[" * depth + "]" * depth).encode()
    woo = client.post(
        "/webhooks/orders/woocommerce",
        data=raw,
        headers={
            **WOO_HEADERS,
            "X-WC-Webhook-Signature": sign(SECRETS["woocommerce_webhook_secret"], raw, "base64"),
        },
        content_type="application/json",
    )
    assert_refused_for_depth(woo, "invalid_payload")
    assert not Order.select().exists()


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/admin/api/customers"),
        ("post", "/admin/api/segments/preview"),
        ("patch", "/admin/api/settings"),
    ],
)
def test_the_admin_api_refuses_deep_nesting_with_400(client, depth, method, path):
    body = b'{"phone": "+919812345678", "tags": ' + nested(depth) + b"}"
    response = getattr(client, method)(
        path, data=body, headers=ADMIN, content_type="application/json"
    )
    assert_refused_for_depth(response, "invalid_body")
    assert not Customer.select().exists()
