"""Genuine payloads from public client libraries and docs (tests/payloads/*/real, each
file's source in the sidecar sources.json), replayed correctly signed with the headers
the shop sends: never a 5xx, never a 400, and every handled topic stored."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest

from bot.core.models import Order, OrderEvent
from bot.core.signing import sign_hmac
from tests.conftest import PAYLOADS, SECRETS

SHOPIFY = PAYLOADS / "shopify" / "real"
WOO = PAYLOADS / "woocommerce" / "real"

#: Shopify topics whose body is each resource (PROVIDERS.md §3.1); the last of each is
#: genuine but not one Dakiya acts on.
SHOPIFY_TOPICS = {
    "order": ["orders/create", "orders/paid", "orders/fulfilled", "orders/cancelled"],
    "fulfillment": ["fulfillments/create", "fulfillments/update"],
    "checkout": ["checkouts/create", "checkouts/update"],
}
SHOPIFY_IGNORED = {"order": "orders/updated", "fulfillment": "fulfillment_events/create"}
WOO_TOPICS = ["order.created", "order.updated"]
WOO_IGNORED = "order.deleted"


def sources(folder: Path) -> dict[str, dict]:
    return json.loads((folder / "sources.json").read_text())


def shopify_headers(raw: bytes, topic: str, api_version: str) -> dict[str, str]:
    version = api_version if re.fullmatch(r"\d{4}-\d{2}", api_version) else "2024-10"
    return {
        "X-Shopify-Hmac-Sha256": sign_hmac(SECRETS["shopify_webhook_secret"], raw, "base64"),
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": "jsmith.myshopify.com",
        "X-Shopify-API-Version": version,
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-Event-Id": str(uuid.uuid4()),
        "X-Shopify-Triggered-At": "2026-11-25T06:10:02.123456789Z",
    }


def woo_headers(raw: bytes, topic: str) -> dict[str, str]:
    resource, _, event = topic.partition(".")
    return {
        "X-WC-Webhook-Source": "https://example.com/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-Signature": sign_hmac(SECRETS["woocommerce_webhook_secret"], raw, "base64"),
        "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": uuid.uuid4().hex,
    }


def assert_taken(response, dedupe_prefix: str, external_id: str) -> None:
    """A handled topic: stored (202), a repeat of the same order event (200), or a
    delivery with nothing to act on (200 ignored): never refused, never a 5xx."""
    assert response.status_code in (200, 202), (response.status_code, response.get_json())
    body = response.get_json()
    if response.status_code == 200:
        assert "ignored" in body or body["duplicate"] is True, body
    else:
        event = OrderEvent.get(OrderEvent.dedupe_key.startswith(dedupe_prefix))
        assert event.order.external_id == external_id


@pytest.mark.parametrize("name", sorted(sources(SHOPIFY)))
def test_every_genuine_shopify_payload_is_accepted_and_stored(client, name):
    source = sources(SHOPIFY)[name]
    raw = (SHOPIFY / name).read_bytes()  # posted byte for byte as the file holds it
    payload = json.loads(raw)
    external_id = str(payload["order_id"] if source["resource"] == "fulfillment" else payload["id"])
    if source["resource"] == "checkout":
        external_id = f"checkout:{payload['token']}"

    for topic in SHOPIFY_TOPICS[source["resource"]]:
        headers = shopify_headers(raw, topic, source["api_version"])
        response = client.post(
            "/webhooks/orders/shopify", data=raw, headers=headers, content_type="application/json"
        )
        assert_taken(response, f"shopify:{headers['X-Shopify-Webhook-Id']}", external_id)

    if source["resource"] in SHOPIFY_IGNORED:
        topic = SHOPIFY_IGNORED[source["resource"]]
        headers = shopify_headers(raw, topic, source["api_version"])
        response = client.post(
            "/webhooks/orders/shopify", data=raw, headers=headers, content_type="application/json"
        )
        assert response.status_code == 200 and "ignored" in response.get_json()
    stored = OrderEvent.select().where(OrderEvent.source == "shopify").count()
    assert stored >= 1 or source["resource"] == "checkout"
    assert Order.select().where(Order.external_id == external_id).exists() or stored == 0


@pytest.mark.parametrize("name", sorted(sources(WOO)))
def test_every_genuine_woocommerce_payload_is_accepted_and_stored(client, name):
    raw = (WOO / name).read_bytes()
    external_id = str(json.loads(raw)["id"])

    for topic in WOO_TOPICS:
        headers = woo_headers(raw, topic)
        response = client.post(
            "/webhooks/orders/woocommerce",
            data=raw,
            headers=headers,
            content_type="application/json",
        )
        assert response.status_code == 202, response.get_json()
        assert_taken(response, f"woocommerce:{headers['X-WC-Webhook-Delivery-ID']}", external_id)

    ignored = client.post(
        "/webhooks/orders/woocommerce",
        data=raw,
        headers=woo_headers(raw, WOO_IGNORED),
        content_type="application/json",
    )
    assert ignored.status_code == 200 and "ignored" in ignored.get_json()
    assert OrderEvent.select().where(OrderEvent.source == "woocommerce").count() == 2


def test_the_real_payloads_name_their_sources():
    for folder in (SHOPIFY, WOO):
        files = {p.name for p in folder.glob("*.json")} - {"sources.json"}
        described = sources(folder)
        assert files == set(described)
        assert all(
            re.fullmatch(r"[0-9a-f]{40}", s["commit"]) and s["repo"] and s["path"]
            for s in described.values()
        )
