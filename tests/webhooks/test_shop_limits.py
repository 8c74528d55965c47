"""Shop deliveries are checked against the columns they are stored in before anything is
written (issue 12, item 2): text people type is cut to fit and the order is accepted;
ids, codes and totals out of range are a 400 naming the field; a value the database
still refuses is never reported as an outage.

Every test runs on SQLite (which does not enforce VARCHAR(n)) and on PostgreSQL (which
does) through scripts/test.sh: the stored lengths are asserted, not just the status.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

import pytest

from bot.core import spool
from bot.core.models import Customer, InboundMessage, Order, OrderEvent
from tests.conftest import SECRETS, load_payload

LONG_NAME = "Asha " + "Kumari" * 50  # 305 characters: longer than Customer.name (200)
MAX_NAME = Customer.name.max_length


def shop_delivery(source: str, change: Callable[[dict], None], **headers: str) -> tuple:
    """(path, raw body, headers) of a correctly signed delivery from `source`, its
    documented payload edited by `change`."""
    from bot.core.signing import sign_hmac

    name = {
        "generic": "generic/order_placed_minimal",
        "shopify": "shopify/orders_create",
        "woocommerce": "woocommerce/order_created",
    }[source]
    body = copy.deepcopy(load_payload(name))
    change(body)
    raw = json.dumps(body).encode()
    if source == "generic":
        signed = {"X-Signature-256": "sha256=" + sign_hmac(SECRETS["order_webhook_secret"], raw)}
        path = "/webhooks/orders"
    elif source == "shopify":
        signed = {
            "X-Shopify-Hmac-Sha256": sign_hmac(SECRETS["shopify_webhook_secret"], raw, "base64"),
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
            "X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
        }
        path = "/webhooks/orders/shopify"
    else:
        signed = {
            "X-WC-Webhook-Signature": sign_hmac(
                SECRETS["woocommerce_webhook_secret"], raw, "base64"
            ),
            "X-WC-Webhook-Topic": "order.created",
            "X-WC-Webhook-Delivery-ID": "a1b2c3d4e5f6",
        }
        path = "/webhooks/orders/woocommerce"
    return path, raw, {**signed, **headers}


def post(client, source: str, change: Callable[[dict], None], **headers: str):
    path, raw, signed = shop_delivery(source, change, **headers)
    return client.post(path, data=raw, headers=signed, content_type="application/json")


def setter(*path: str, value) -> Callable[[dict], None]:
    def change(body: dict) -> None:
        node = body
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value

    return change


NAME_PATHS = {
    "generic": ("customer", "name"),
    "shopify": ("customer", "first_name"),
    "woocommerce": ("billing", "first_name"),
}


@pytest.mark.parametrize("source", sorted(NAME_PATHS))
def test_an_over_long_customer_name_is_cut_to_fit_and_the_order_is_stored(client, source):
    response = post(client, source, setter(*NAME_PATHS[source], value=LONG_NAME))

    assert response.status_code == 202, response.get_json()
    assert "event_id" in response.get_json()  # stored now, not spooled
    (customer,) = Customer.select()
    assert customer.name == LONG_NAME[:MAX_NAME]
    assert OrderEvent.select().count() == 1


def test_over_long_carrier_and_shop_status_words_are_cut_too(client):
    generic = post(client, "generic", setter("order", "tracking", "carrier", value="Blue " * 60))
    woo = post(client, "woocommerce", setter("status", value="awaiting-" + "x" * 60))

    assert generic.status_code == 202 and woo.status_code == 202
    carriers = [o.carrier for o in Order.select().where(Order.carrier.is_null(False))]
    statuses = [o.status for o in Order.select().where(Order.source == "woocommerce")]
    assert carriers == [("Blue " * 60)[: Order.carrier.max_length]]
    assert statuses == [("awaiting-" + "x" * 60)[: Order.status.max_length]]


CURRENCY_FIELDS = {"generic": "order.currency", "shopify": "currency", "woocommerce": "currency"}
CURRENCY_PATHS = {
    "generic": ("order", "currency"),
    "shopify": ("currency",),
    "woocommerce": ("currency",),
}


@pytest.mark.parametrize("source", sorted(CURRENCY_FIELDS))
def test_a_currency_that_is_not_iso_4217_is_a_400_naming_it(client, source):
    response = post(client, source, setter(*CURRENCY_PATHS[source], value="RUPEE"))

    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_payload"
    assert list(error["fields"]) == [CURRENCY_FIELDS[source]]
    assert OrderEvent.select().count() == 0


@pytest.mark.parametrize("source", ["shopify", "woocommerce"])
def test_a_three_letter_code_iso_4217_does_not_have_is_refused_too(client, source):
    response = post(client, source, setter(*CURRENCY_PATHS[source], value="ABC"))

    assert response.status_code == 400
    assert list(response.get_json()["error"]["fields"]) == [CURRENCY_FIELDS[source]]


TOTAL_PATHS = {
    "generic": ("order", "total"),
    "shopify": ("total_price",),
    "woocommerce": ("total",),
}


@pytest.mark.parametrize("source", sorted(TOTAL_PATHS))
@pytest.mark.parametrize("total", [1e20, "1E+20", "1000000000000.00"])
def test_a_total_the_column_cannot_hold_is_a_400_naming_it(client, source, total):
    response = post(client, source, setter(*TOTAL_PATHS[source], value=total))

    assert response.status_code == 400, response.get_json()
    assert list(response.get_json()["error"]["fields"]) == [".".join(TOTAL_PATHS[source])]
    assert Order.select().count() == 0


def test_the_largest_total_the_column_holds_is_stored(client):
    response = post(client, "shopify", setter("total_price", value="999999999999.99"))

    assert response.status_code == 202
    assert str(Order.get().total) == "999999999999.99"


@pytest.mark.parametrize(
    ("source", "change", "field"),
    [
        ("generic", setter("order", "id", value="9" * 65), "order.id"),
        ("generic", setter("order", "number", value="#" * 65), "order.number"),
        (
            "generic",
            setter("customer", "language", value="en-" + "-".join(["abcdefgh"] * 3)),
            "customer.language",
        ),
        ("shopify", setter("id", value=10**70), "id"),
        ("shopify", setter("name", value="#" + "1" * 64), "name"),
        ("woocommerce", setter("id", value="7" * 65), "id"),
        ("woocommerce", setter("number", value="7" * 65), "number"),
    ],
)
def test_an_over_long_id_or_number_is_a_400_naming_it(client, source, change, field):
    response = post(client, source, change)

    assert response.status_code == 400
    assert list(response.get_json()["error"]["fields"]) == [field]
    assert OrderEvent.select().count() == 0


def test_an_over_long_shopify_tracking_number_is_a_400_naming_it(client, sign):
    fulfillment = load_payload("shopify/fulfillments_create")
    fulfillment["tracking_number"] = "1Z" * 70
    raw = json.dumps(fulfillment).encode()
    response = client.post(
        "/webhooks/orders/shopify",
        data=raw,
        headers={
            "X-Shopify-Hmac-Sha256": sign(SECRETS["shopify_webhook_secret"], raw, "base64"),
            "X-Shopify-Topic": "fulfillments/create",
            "X-Shopify-Webhook-Id": "w-tracking",
        },
        content_type="application/json",
    )

    assert response.status_code == 400
    assert list(response.get_json()["error"]["fields"]) == ["tracking_number"]


@pytest.mark.parametrize(
    ("source", "header"),
    [
        ("shopify", "X-Shopify-Webhook-Id"),
        ("shopify", "X-Shopify-Event-Id"),
        ("woocommerce", "X-WC-Webhook-Delivery-ID"),
    ],
)
def test_an_over_long_delivery_id_header_is_a_400_naming_it(client, source, header):
    response = post(client, source, lambda body: None, **{header: "d" * 129})

    assert response.status_code == 400
    assert list(response.get_json()["error"]["fields"]) == [header]


def test_an_over_long_whatsapp_profile_name_is_cut_and_the_message_stored(
    client, sign, run_jobs, redis_conn
):
    body = copy.deepcopy(load_payload("interakt/webhooks")["received_text"])
    body["data"]["customer"]["traits"]["name"] = LONG_NAME
    raw = json.dumps(body).encode()
    response = client.post(
        "/webhooks/whatsapp/interakt",
        data=raw,
        headers={"Interakt-Signature": "sha256=" + sign(SECRETS["interakt_webhook_secret"], raw)},
        content_type="application/json",
    )
    run_jobs()

    assert response.status_code == 200
    assert spool.size(redis_conn) == 0  # kept in the database, not left in the spool
    assert InboundMessage.select().count() == 1
    assert Customer.get().name == LONG_NAME[:MAX_NAME]


@pytest.fixture
def storing_route(app):
    """A route that stores whatever customer it is given, bypassing every check: the
    database's own answer to a bad value, as a webhook would meet it."""

    def store():
        from flask import request

        Customer.create(**request.get_json())
        return {"stored": True}, 201

    app.add_url_rule("/test-store", "test_store", store, methods=["POST"])
    return "/test-store"


def test_a_constraint_error_is_not_answered_as_a_database_outage(client, storing_route):
    assert client.post(storing_route, json={"phone": "+919812345678"}).status_code == 201

    response = client.post(storing_route, json={"phone": "+919812345678"})  # unique phone

    assert response.status_code == 500
    assert response.get_json()["error"]["code"] == "unstorable_value"


def test_a_value_too_long_for_postgres_is_not_answered_as_a_database_outage(
    client, storing_route, database_url
):
    response = client.post(storing_route, json={"phone": "+91" + "9" * 40})

    if database_url.startswith("postgres"):  # VARCHAR(20) refuses it: a DataError
        assert response.status_code == 500
        assert response.get_json()["error"]["code"] == "unstorable_value"
    else:  # SQLite stores any length
        assert response.status_code == 201


def test_a_real_outage_is_still_a_503(client, storing_route, database_down):
    response = client.post(storing_route, json={"phone": "+919812345678"})

    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "database_unavailable"
