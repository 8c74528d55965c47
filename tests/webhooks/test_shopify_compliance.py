"""Shopify's mandatory compliance topics (PROVIDERS.md §9.5), signed and idempotent like
the order topics. Bodies: Shopify's reference examples ("Mandatory compliance webhooks",
shopify.dev; tests/payloads/shopify/compliance.json), with a customer Dakiya knows."""

from __future__ import annotations

import copy
import json
from datetime import timedelta

from bot.core.models import AuditLog, Customer, Message, Order, OrderEvent, Suppression, utcnow
from bot.observability import alerts
from bot.policy.privacy import suppression_hash
from tests.conftest import SECRETS, load_payload
from tests.factories import queued_message
from tests.webhooks.test_shops import SHOPIFY_SECRET

EXAMPLES = load_payload("shopify/compliance")
ASHA = "+919812345678"


def post(client, sign, topic: str, body: dict, webhook_id: str):
    raw = json.dumps(body).encode()
    headers = {
        "X-Shopify-Hmac-Sha256": sign(SHOPIFY_SECRET, raw, "base64"),
        "X-Shopify-Topic": topic,
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Shop-Domain": "asha-store.myshopify.com",
    }
    return client.post(
        "/webhooks/orders/shopify", data=raw, headers=headers, content_type="application/json"
    )


def asha_at_shopify() -> Order:
    """Asha with a Shopify order 299938 (the example's first order) and its message."""
    message = queued_message(phone=ASHA, order_id="299938")
    Order.update(source="shopify").where(Order.id == message.order_id).execute()
    return Order.get_by_id(message.order_id)


def example(topic: str, phone: str | None = "98123 45678") -> dict:
    body = copy.deepcopy(EXAMPLES[topic])
    if "customer" in body:
        body["customer"]["phone"] = phone
    return body


def test_customers_redact_erases_the_customer_and_keeps_the_suppression(client, sign):
    asha_at_shopify()

    response = post(client, sign, "customers/redact", example("customers/redact"), "wh-redact-1")

    assert response.status_code == 200
    assert response.get_json() == {
        "compliance": "customers/redact",
        "duplicate": False,
        "customers": 1,
    }
    assert Customer.select().count() == 0 and Message.select().count() == 0
    salt = SECRETS["suppression_salt"]
    assert Suppression.get_or_none(Suppression.phone_hash == suppression_hash(ASHA, salt))
    erase = AuditLog.get(AuditLog.action == "erase")
    assert erase.actor == "shopify:customers/redact"
    assert ASHA not in json.dumps(erase.details) and ASHA not in (erase.subject or "")


def test_a_redact_naming_only_the_order_finds_its_customer(client, sign):
    asha_at_shopify()
    body = example("customers/redact", phone=None)

    assert post(client, sign, "customers/redact", body, "wh-redact-2").status_code == 200

    assert Customer.select().count() == 0


def test_a_redelivered_request_changes_nothing_and_answers_a_duplicate(client, sign):
    asha_at_shopify()
    post(client, sign, "customers/redact", example("customers/redact"), "wh-redact-3")
    again = post(client, sign, "customers/redact", example("customers/redact"), "wh-redact-3")
    assert again.get_json()["duplicate"] is True
    assert AuditLog.select().where(AuditLog.action == "erase").count() == 1
    stored = OrderEvent.get(OrderEvent.dedupe_key == "shopify:wh-redact-3")
    assert stored.payload == {}  # it names a customer: nothing of it is kept


def test_a_data_request_tells_the_shop_contact_and_keeps_the_customer(client, sign, redis_conn):
    asha_at_shopify()

    response = post(
        client, sign, "customers/data_request", example("customers/data_request"), "wh-data-1"
    )

    assert response.get_json()["customers"] == 1
    assert Customer.select().count() == 1
    events = alerts.provider_events(redis_conn, utcnow(), timedelta(days=1))
    [news] = [event for event in events if event.subject.startswith("data_request:9999")]
    assert "export is ready" in news.text and "191167" in news.text
    assert ASHA not in news.text and "9812345678" not in news.text  # masked
    assert AuditLog.get(AuditLog.action == "data_request").actor == "shopify:customers/data_request"


def test_shop_redact_erases_every_customer_of_the_shops_orders(client, sign):
    asha_at_shopify()
    other = queued_message(phone="+919812345679", order_id="1043", event_id="evt-2")
    generic = queued_message(phone="+919812345670", order_id="1044", event_id="evt-3")
    Order.update(source="shopify").where(Order.id == other.order_id).execute()

    response = post(client, sign, "shop/redact", EXAMPLES["shop/redact"], "wh-shop-1")

    assert response.get_json()["customers"] == 2
    assert [c.phone for c in Customer.select()] == [generic.phone]  # not a Shopify customer


def test_a_badly_signed_or_customerless_request_changes_nothing(client, sign):
    asha_at_shopify()
    raw = json.dumps(example("customers/redact")).encode()
    bad = client.post(
        "/webhooks/orders/shopify",
        data=raw,
        headers={
            "X-Shopify-Hmac-Sha256": "bad",
            "X-Shopify-Topic": "customers/redact",
            "X-Shopify-Webhook-Id": "wh-bad",
        },
        content_type="application/json",
    )
    assert bad.status_code == 401
    no_customer = post(client, sign, "customers/redact", {"shop_domain": "x"}, "wh-none")
    assert no_customer.status_code == 400
    assert "customer" in no_customer.get_json()["error"]["fields"]
    assert Customer.select().count() == 1


def test_a_shop_redact_that_names_no_shop_erases_nobody(client, sign):
    asha_at_shopify()
    response = post(client, sign, "shop/redact", {"shop_id": 954889}, "wh-shop-none")
    assert response.status_code == 400
    assert "shop_domain" in response.get_json()["error"]["fields"]
    assert Customer.select().count() == 1
