"""Shopify and WooCommerce webhooks, end to end, with their documented payloads."""

from __future__ import annotations

import json

import pytest

from bot.core.models import EventKind, Message, OrderEvent, State
from tests.conftest import SECRETS, load_payload

SHOPIFY_SECRET = SECRETS["shopify_webhook_secret"]
WOO_SECRET = SECRETS["woocommerce_webhook_secret"]


def post_shopify(client, sign, name, topic, webhook_id, secret=SHOPIFY_SECRET, **extra):
    raw = json.dumps(load_payload(f"shopify/{name}")).encode()
    headers = {
        "X-Shopify-Hmac-Sha256": sign(secret, raw, "base64"),
        "X-Shopify-Shop-Domain": "asha-store.myshopify.com",
        "X-Shopify-API-Version": "2025-10",
        "X-Shopify-Triggered-At": "2026-11-25T06:10:02.123Z",
        "X-Shopify-Event-Id": f"evt-{webhook_id}",
        **extra,
    }
    if topic is not None:
        headers["X-Shopify-Topic"] = topic
    if webhook_id is not None:
        headers["X-Shopify-Webhook-Id"] = webhook_id
    return client.post(
        "/webhooks/orders/shopify", data=raw, headers=headers, content_type="application/json"
    )


def post_woo(client, sign, body: dict, topic: str, delivery_id: str, secret=WOO_SECRET):
    raw = json.dumps(body).encode()
    headers = {
        "X-WC-Webhook-Source": "https://shop.example.in/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": "order",
        "X-WC-Webhook-Event": topic.split(".")[1],
        "X-WC-Webhook-Signature": sign(secret, raw, "base64"),
        "X-WC-Webhook-ID": "3",
        "X-WC-Webhook-Delivery-ID": delivery_id,
    }
    return client.post(
        "/webhooks/orders/woocommerce", data=raw, headers=headers, content_type="application/json"
    )


def kinds() -> list[str]:
    return [m.kind for m in Message.select().order_by(Message.id)]


def test_shopify_order_lifecycle_sends_one_message_per_step(client, sign):
    assert post_shopify(client, sign, "orders_create", "orders/create", "w1").status_code == 202
    assert (
        post_shopify(client, sign, "orders_fulfilled", "orders/fulfilled", "w2").status_code == 202
    )
    # The same shipment again, through the other topic: recorded, not notified twice.
    assert (
        post_shopify(client, sign, "fulfillments_create", "fulfillments/create", "w3").status_code
        == 202
    )
    assert (
        post_shopify(client, sign, "fulfillments_update", "fulfillments/update", "w4").status_code
        == 202
    )
    assert kinds() == [EventKind.PLACED, EventKind.SHIPPED, EventKind.OUT_FOR_DELIVERY]
    assert OrderEvent.select().count() == 4
    assert {m.phone for m in Message.select()} == {"+919812345678"}
    assert all(m.state == State.QUEUED for m in Message.select())


def test_shopify_order_ids_above_2_to_the_53_stay_exact(client, sign):
    post_shopify(client, sign, "orders_create", "orders/create", "w1")
    assert Message.get().order.external_id == "948873224560123457"


def test_shopify_redelivery_with_the_same_webhook_id_is_200_and_a_no_op(client, sign):
    first = post_shopify(client, sign, "orders_create", "orders/create", "w1").get_json()
    again = post_shopify(client, sign, "orders_create", "orders/create", "w1")
    assert again.status_code == 200
    assert again.get_json()["message_ids"] == first["message_ids"]
    assert OrderEvent.select().count() == 1


def test_shopify_bad_signature_is_401(client, sign):
    response = post_shopify(client, sign, "orders_create", "orders/create", "w1", secret="other")
    assert response.status_code == 401
    assert OrderEvent.select().count() == 0


@pytest.mark.parametrize(
    ("topic", "webhook_id", "field"),
    [
        ("products/create", "w1", "X-Shopify-Topic"),
        ("not a topic", "w1", "X-Shopify-Topic"),
        (None, "w1", "X-Shopify-Topic"),
        ("orders/create", None, "X-Shopify-Webhook-Id"),
    ],
)
def test_shopify_unknown_topic_or_missing_header_is_400_naming_it(
    client, sign, topic, webhook_id, field
):
    response = post_shopify(client, sign, "orders_create", topic, webhook_id)
    assert response.status_code == 400
    assert field in response.get_json()["error"]["fields"]
    assert OrderEvent.select().count() == 0


def test_shopify_topic_we_do_not_act_on_is_acknowledged_and_not_stored(client, sign):
    response = post_shopify(client, sign, "orders_create", "orders/updated", "w9")
    assert response.status_code == 200
    assert "ignored" in response.get_json()
    assert OrderEvent.select().count() == 0


def test_woocommerce_ping_is_answered_200_and_stores_nothing(client):
    response = client.post(
        "/webhooks/orders/woocommerce",
        data="webhook_id=3",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert OrderEvent.select().count() == 0


def test_woocommerce_unsigned_order_is_401(client):
    raw = json.dumps(load_payload("woocommerce/order_created")).encode()
    response = client.post(
        "/webhooks/orders/woocommerce", data=raw, headers={"X-WC-Webhook-Topic": "order.created"}
    )
    assert response.status_code == 401


def test_woocommerce_cod_order_is_confirmed_once_then_shipped(client, sign):
    created = load_payload("woocommerce/order_created")
    assert post_woo(client, sign, created, "order.created", "d1").status_code == 202
    # WooCommerce's follow-up update still says "processing": no second confirmation.
    assert (
        post_woo(
            client, sign, created | {"date_modified": "2026-11-25T10:31:00"}, "order.updated", "d2"
        ).status_code
        == 202
    )
    shipped = load_payload("woocommerce/order_updated_completed")
    assert post_woo(client, sign, shipped, "order.updated", "d3").status_code == 202
    assert kinds() == [EventKind.COD_CONFIRMATION, EventKind.SHIPPED]


def test_woocommerce_same_delivery_twice_is_a_duplicate(client, sign):
    created = load_payload("woocommerce/order_created")
    post_woo(client, sign, created, "order.created", "d1")
    again = post_woo(client, sign, created, "order.created", "d1")
    assert again.status_code == 200 and again.get_json()["duplicate"] is True
    assert OrderEvent.select().count() == 1


def test_woocommerce_delivery_during_a_database_outage_is_spooled_then_processed(
    client, sign, database_down, redis_conn, run_jobs
):
    from bot.core import spool
    from bot.core.models import utcnow
    from bot.extensions import services
    from jobs.sweep import sweep_once

    response = post_woo(
        client, sign, load_payload("woocommerce/order_created"), "order.created", "d1"
    )
    assert response.status_code == 202 and response.get_json() == {"spooled": True}
    assert spool.size(redis_conn) == 1
    database_down.end()
    assert sweep_once(services(), utcnow())["spool_drained"] == 1
    assert spool.size(redis_conn) == 0
    assert kinds() == [EventKind.COD_CONFIRMATION]
    run_jobs()
    assert Message.get().state == State.READ


def test_the_first_usable_number_of_a_shopify_order_gets_the_message(client, sign):
    """Customer record, order, shipping, billing: a placeholder on the customer ("0000")
    does not hide the shipping address's real number (README "Which number")."""
    order = load_payload("shopify/orders_create")
    order["customer"]["phone"] = "0000"
    order["phone"] = "not given"
    order["shipping_address"]["phone"] = "098123 45600"
    raw = json.dumps(order).encode()
    headers = {
        "X-Shopify-Hmac-Sha256": sign(SHOPIFY_SECRET, raw, "base64"),
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Webhook-Id": "wh-usable-1",
    }
    response = client.post(
        "/webhooks/orders/shopify", data=raw, headers=headers, content_type="application/json"
    )
    assert response.status_code == 202, response.get_json()
    [message] = Message.select()
    assert message.phone == "+919812345600"


def test_the_first_usable_number_of_a_woocommerce_order_gets_the_message(client, sign):
    order = load_payload("woocommerce/order_created")
    order["billing"]["phone"] = "-"
    order["shipping"]["phone"] = "+91 98123 45601"
    assert post_woo(client, sign, order, "order.created", "d-usable-1").status_code == 202
    assert [m.phone for m in Message.select()] == ["+919812345601"]


def test_one_shopify_event_delivered_to_two_subscriptions_is_stored_and_sent_once(client, sign):
    """Each subscription gets its own X-Shopify-Webhook-Id; X-Shopify-Event-Id is the
    same (PROVIDERS.md §3.2: store both)."""
    same_event = {"X-Shopify-Event-Id": "evt-shared-1"}
    first = post_shopify(client, sign, "orders_create", "orders/create", "w-sub-a", **same_event)
    second = post_shopify(client, sign, "orders_create", "orders/create", "w-sub-b", **same_event)

    assert (first.status_code, second.status_code) == (202, 200)
    assert second.get_json()["message_ids"] == first.get_json()["message_ids"]
    assert OrderEvent.select().count() == 1
    assert Message.select().count() == 1


def test_the_same_event_id_on_another_topic_is_another_event(client, sign):
    same_event = {"X-Shopify-Event-Id": "evt-shared-2"}
    post_shopify(client, sign, "orders_create", "orders/create", "w-t1", **same_event)
    post_shopify(client, sign, "orders_cancelled", "orders/cancelled", "w-t2", **same_event)
    assert OrderEvent.select().count() == 2
