"""The WooCommerce catch-up pull (issue 16 item 4) against a fake store's REST API on a
real socket (tests/fakes/woocommerce_api.py): what the webhooks missed is taken once,
what they brought is not sent twice, an outage or a wrong key loses nothing."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest

from bot.core.models import Message, OrderEvent, RuntimeSetting, utcnow
from bot.extensions import services
from bot.intake.woo_catch_up import CURSOR, catch_up, read_cursor
from bot.integrations.woocommerce_api import WooCommerceError
from jobs.woocommerce import catch_up_job
from tests.conftest import load_payload
from tests.fakes.woocommerce_api import FakeWooCommerce
from tests.webhooks.test_shops import post_woo


@pytest.fixture(scope="module")
def store():
    fake = FakeWooCommerce().start()
    yield fake
    fake.stop()


@pytest.fixture
def woo_app(make_app, settings, store):
    store.orders.clear()
    store.requests.clear()
    store.outage = False
    return make_app(
        settings.replace(
            woocommerce_base_url=store.url,
            woocommerce_consumer_key=store.key,
            woocommerce_consumer_secret=store.secret,
        )
    )


def order(order_id: int, minutes_ago: int, phone: str = "09812345678", **changes) -> dict:
    """WooCommerce's order resource (tests/payloads/woocommerce/order_created.json, as
    the REST API returns it), created and modified `minutes_ago`."""
    body = copy.deepcopy(load_payload("woocommerce/order_created"))
    when = (utcnow() - timedelta(minutes=minutes_ago)).replace(microsecond=0).isoformat()
    body.update(id=order_id, number=str(order_id), date_created_gmt=when, date_modified_gmt=when)
    body["billing"]["phone"] = phone
    body.update(changes)
    return body


def test_an_order_the_webhooks_missed_is_taken_once(woo_app, store):
    store.orders.append(order(4801, minutes_ago=5))

    first = catch_up(services(), utcnow())
    again = catch_up(services(), utcnow())

    assert (first.orders, first.new) == (1, 1)
    assert again.new == 0
    [message] = Message.select()
    assert (message.kind, message.phone) == ("cod_confirmation", "+919812345678")
    assert read_cursor() is not None
    query = store.requests[-1]
    assert (query["orderby"], query["order"], query["per_page"]) == ("modified", "asc", "100")


def test_an_order_the_webhook_brought_is_not_sent_twice(woo_app, sign, store):
    resource = order(4802, minutes_ago=3)
    client = woo_app.test_client()
    assert post_woo(client, sign, resource, "order.created", "d-4802").status_code == 202
    store.orders.append(resource)

    catch_up(services(), utcnow())

    assert Message.select().count() == 1


def test_a_later_status_is_news_and_an_old_order_from_before_the_first_pull_is_not(woo_app, store):
    store.orders.append(order(4803, minutes_ago=600))  # long before the first look-back
    store.orders.append(order(4804, minutes_ago=5, status="completed", payment_method="upi"))

    catch_up(services(), utcnow())

    assert [m.kind for m in Message.select()] == ["shipped"]


def test_an_outage_leaves_the_cursor_and_the_next_pull_takes_the_order(woo_app, store):
    RuntimeSetting.create(
        key=CURSOR, value=(utcnow() - timedelta(hours=1)).isoformat(), updated_by="test"
    )
    before = read_cursor()
    store.orders.append(order(4805, minutes_ago=30))
    store.outage = True

    with pytest.raises(WooCommerceError, match="503"):
        catch_up(services(), utcnow())
    assert catch_up_job() == 0  # the job logs it and waits for the next pull
    assert read_cursor() == before and OrderEvent.select().count() == 0

    store.outage = False
    assert catch_up_job() == 1
    assert Message.select().count() == 1


def test_a_wrong_key_is_an_error_naming_the_answer(woo_app, store):
    store.key, key = "ck_other", store.key
    try:
        with pytest.raises(WooCommerceError, match="401"):
            catch_up(services(), utcnow())
    finally:
        store.key = key


def test_many_orders_are_read_page_by_page(woo_app, store):
    store.orders.extend(
        order(5000 + n, minutes_ago=20, phone=f"0981234{n:04d}") for n in range(150)
    )

    pulled = catch_up(services(), utcnow())

    assert (pulled.orders, pulled.new) == (150, 150)
    assert [r["page"] for r in store.requests] == ["1", "2"]


def test_nothing_is_pulled_until_the_store_is_configured(app, store):
    store.requests.clear()
    assert catch_up_job() == 0
    assert store.requests == []
