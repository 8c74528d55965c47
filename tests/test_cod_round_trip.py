"""The cash-on-delivery round trip (issue 16 item 3): the COD confirmation carries
Confirm and Cancel buttons; the customer's tap is recorded once and written back to the
shop by the write-back job, against fakes of Shopify's Admin API and WooCommerce's REST
API on real sockets (tests/fakes/shopify_admin.py, tests/fakes/woocommerce_api.py)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bot.core.models import EventKind, Message, Order, ShopWriteBack, State, utcnow
from jobs.write_back import write_back_due
from tests.conftest import SECRETS
from tests.factories import queued_message
from tests.fakes.shopify_admin import FakeShopifyAdmin, ShopOrder
from tests.fakes.woocommerce_api import FakeWooCommerce
from tests.test_conversation_flow import inbound

ASHA = "919812345678"


@pytest.fixture(scope="module")
def shopify():
    fake = FakeShopifyAdmin().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def woo():
    fake = FakeWooCommerce().start()
    yield fake
    fake.stop()


@pytest.fixture
def shop_app(make_app, settings, shopify, woo):
    shopify.reset()
    woo.statuses.clear()
    woo.notes.clear()
    woo.outage = False
    return make_app(
        settings.replace(
            shopify_shop_domain="asha-store.myshopify.com",
            shopify_client_id=shopify.client_id,
            shopify_client_secret=shopify.client_secret,
            shopify_admin_api_base_url=shopify.url,
            woocommerce_base_url=woo.url,
            woocommerce_consumer_key=woo.key,
            woocommerce_consumer_secret=woo.secret,
        )
    )


def cod_order(source: str = "shopify", external_id: str = "820982911946154508") -> Order:
    """A COD order placed at `source`, its confirmation queued (and, for Shopify, the
    order at the fake shop)."""
    message = queued_message(phone="+" + ASHA, kind=EventKind.COD_CONFIRMATION)
    Order.update(source=source, external_id=external_id).where(
        Order.id == message.order_id
    ).execute()
    return Order.get_by_id(message.order_id)


def tap(client, sign, payload: str, title: str = "Confirm"):
    """The customer taps a template's quick-reply button (Meta's `button` message)."""
    raw = json.dumps(inbound(sender=ASHA, button=(payload, title))).encode()
    headers = {"X-Hub-Signature-256": "sha256=" + sign(SECRETS["meta_app_secret"], raw)}
    response = client.post(
        "/webhooks/whatsapp/meta", data=raw, headers=headers, content_type="application/json"
    )
    assert response.status_code == 200
    return raw


def replies() -> list[str]:
    return [m.text for m in Message.select().where(Message.kind == "reply").order_by(Message.id)]


def test_the_cod_confirmation_carries_confirm_and_cancel_buttons(shop_app):
    order = cod_order()
    [message] = Message.select()
    assert [b["value"] for b in message.params["buttons"]] == [
        f"COD:CONFIRM:{order.id}",
        f"COD:CANCEL:{order.id}",
    ]


def test_a_confirm_tap_tags_and_notes_the_shopify_order_once(shop_app, sign, run_jobs, shopify):
    order = cod_order()
    shopify.orders[f"gid://shopify/Order/{order.external_id}"] = ShopOrder(note="gift wrap")
    client = shop_app.test_client()

    tap(client, sign, f"COD:CONFIRM:{order.id}")
    run_jobs()

    order = Order.get_by_id(order.id)
    assert order.cod_answer == "confirmed" and order.cod_answered_at is not None
    assert "is confirmed" in replies()[-1]
    assert write_back_due() == 1
    shop_order = shopify.orders[f"gid://shopify/Order/{order.external_id}"]
    assert shop_order.tags == ["cod-confirmed"]
    assert shop_order.note.startswith("gift wrap\nDakiya: on WhatsApp the customer confirmed")
    assert (ShopWriteBack.get().state, shopify.grants) == ("done", 1)

    # Tapped again (a second wamid): nothing more is written, the answer stays.
    tap(client, sign, f"COD:CANCEL:{order.id}", "Cancel")
    run_jobs()
    assert "already have your answer" in replies()[-1]
    assert ShopWriteBack.select().count() == 1 and write_back_due() == 0


def test_a_redelivered_tap_is_acted_on_once(shop_app, sign, run_jobs):
    order = cod_order()
    client = shop_app.test_client()
    raw = tap(client, sign, f"COD:CONFIRM:{order.id}")
    headers = {"X-Hub-Signature-256": "sha256=" + sign(SECRETS["meta_app_secret"], raw)}
    client.post(
        "/webhooks/whatsapp/meta", data=raw, headers=headers, content_type="application/json"
    )
    run_jobs()
    assert len(replies()) == 1 and ShopWriteBack.select().count() == 1


def test_a_tap_after_the_order_shipped_changes_nothing_and_says_so(shop_app, sign, run_jobs):
    order = cod_order()
    Order.update(stage=EventKind.SHIPPED).where(Order.id == order.id).execute()

    tap(shop_app.test_client(), sign, f"COD:CANCEL:{order.id}", "Cancel")
    run_jobs()

    assert Order.get_by_id(order.id).cod_answer is None
    assert ShopWriteBack.select().count() == 0
    assert "already shipped" in replies()[-1] and "nothing was changed" in replies()[-1]


def test_a_tap_on_someone_elses_order_reveals_nothing(shop_app, sign, run_jobs):
    order = cod_order()
    tap(shop_app.test_client(), sign, f"COD:CONFIRM:{order.id + 999}")
    run_jobs()
    assert ShopWriteBack.select().count() == 0
    assert "couldn't find" in replies()[-1]


def test_the_answer_withdraws_the_unsent_reminder(make_app, settings, sign, run_jobs, shopify):
    app = make_app(settings.replace(cod_reminder_minutes=60, cod_reminder_template="cod_reminder"))
    order = cod_order()
    [reminder] = Message.select().where(Message.kind == "cod_reminder")
    assert reminder.state == State.DEFERRED

    tap(app.test_client(), sign, f"COD:CONFIRM:{order.id}")
    run_jobs()

    assert Message.get_by_id(reminder.id).state == State.SUPPRESSED


def test_an_expired_token_is_fetched_again(shop_app, sign, run_jobs, shopify):
    order = cod_order()
    shopify.orders[f"gid://shopify/Order/{order.external_id}"] = ShopOrder()
    tap(shop_app.test_client(), sign, f"COD:CONFIRM:{order.id}")
    run_jobs()
    # A token was cached by an earlier write-back; its 24 hours are up.
    from bot.extensions import services
    from bot.integrations.shopify_admin import TOKEN_KEY

    services().redis.set(TOKEN_KEY, "shpat_expired")

    assert write_back_due() == 1
    assert shopify.grants == 1  # the stale token got a 401, a fresh one was granted
    assert shopify.orders[f"gid://shopify/Order/{order.external_id}"].tags == ["cod-confirmed"]


def test_a_throttled_answer_is_tried_again_later(shop_app, sign, run_jobs, shopify):
    order = cod_order()
    shopify.orders[f"gid://shopify/Order/{order.external_id}"] = ShopOrder()
    tap(shop_app.test_client(), sign, f"COD:CONFIRM:{order.id}")
    run_jobs()
    shopify.throttle(1)

    assert write_back_due() == 0
    pending = ShopWriteBack.get()
    assert (pending.state, pending.attempts) == ("pending", 1)
    assert "THROTTLED" in pending.last_error and pending.next_attempt_at > utcnow()

    ShopWriteBack.update(next_attempt_at=utcnow() - timedelta(seconds=1)).execute()
    assert write_back_due() == 1 and ShopWriteBack.get().state == "done"


def test_user_errors_fail_the_write_back_with_shopifys_words(shop_app, sign, run_jobs, shopify):
    order = cod_order()  # not at the fake shop: "Order does not exist"
    tap(shop_app.test_client(), sign, f"COD:CONFIRM:{order.id}")
    run_jobs()

    write_back_due()

    failed = ShopWriteBack.get()
    assert failed.state == "failed" and "Order does not exist" in failed.last_error


def test_a_cancel_tap_cancels_the_shopify_order_when_the_shop_asks_for_it(
    make_app, settings, sign, run_jobs, shopify
):
    shopify.reset()
    app = make_app(
        settings.replace(
            shopify_client_id=shopify.client_id,
            shopify_client_secret=shopify.client_secret,
            shopify_admin_api_base_url=shopify.url,
            shopify_cod_cancel_orders=True,
        )
    )
    order = cod_order()
    shop_order = shopify.orders[f"gid://shopify/Order/{order.external_id}"] = ShopOrder()

    tap(app.test_client(), sign, f"COD:CANCEL:{order.id}", "Cancel")
    run_jobs()
    write_back_due()

    assert "is cancelled" in replies()[-1]
    assert (shop_order.tags, shop_order.cancelled) == (["cod-cancelled"], True)


def test_woocommerce_gets_a_note_and_the_status_and_waits_out_an_outage(
    shop_app, sign, run_jobs, woo
):
    order = cod_order("woocommerce", "4750")
    tap(shop_app.test_client(), sign, f"COD:CONFIRM:{order.id}")
    run_jobs()
    woo.outage = True

    assert write_back_due() == 0
    assert ShopWriteBack.get().state == "pending"

    woo.outage = False
    ShopWriteBack.update(next_attempt_at=utcnow() - timedelta(seconds=1)).execute()
    assert write_back_due() == 1
    assert woo.statuses == {"4750": "processing"}
    assert "confirmed this cash-on-delivery order" in woo.notes["4750"][0]


def test_an_order_from_a_shop_without_api_access_is_skipped_with_the_reason(
    shop_app, sign, run_jobs
):
    order = cod_order("generic", "1042")
    tap(shop_app.test_client(), sign, f"COD:CONFIRM:{order.id}")
    run_jobs()
    write_back_due()
    skipped = ShopWriteBack.get()
    assert skipped.state == "skipped" and "generic" in skipped.last_error


def test_erasing_the_customer_takes_their_orders_write_backs_too(shop_app, sign, run_jobs):
    from tests.conftest import ADMIN

    order = cod_order()
    client = shop_app.test_client()
    tap(client, sign, f"COD:CONFIRM:{order.id}")
    run_jobs()
    assert ShopWriteBack.select().count() == 1

    assert client.delete(f"/admin/api/customers/+{ASHA}", headers=ADMIN).status_code == 200
    assert ShopWriteBack.select().count() == 0 and Order.select().count() == 0


def test_the_admin_api_shows_the_answer_and_the_write_back(shop_app, sign, run_jobs):
    from tests.conftest import ADMIN

    order = cod_order("generic", "1042")
    client = shop_app.test_client()
    tap(client, sign, f"COD:CONFIRM:{order.id}")
    run_jobs()
    write_back_due()

    shown = client.get(f"/admin/api/orders/{order.id}", headers=ADMIN).get_json()
    assert shown["cod_answer"] == "confirmed"
    [write_back] = shown["write_backs"]
    assert (write_back["action"], write_back["state"]) == ("confirmed", "skipped")


def test_a_write_back_that_keeps_failing_raises_an_alert(shop_app, sign, run_jobs, shopify):
    from bot.core.config_rules import alert_rules_from_settings
    from bot.extensions import services
    from bot.observability.alerts import evaluate, gather_facts

    order = cod_order()  # unknown at the fake shop: userErrors
    tap(shop_app.test_client(), sign, f"COD:CONFIRM:{order.id}")
    run_jobs()
    write_back_due()

    svc = services()
    rules = alert_rules_from_settings(svc.settings)
    facts = gather_facts(svc.redis, svc.queues, utcnow(), rules)
    [condition] = [c for c in evaluate(facts, rules, utcnow()) if c.key == "write_backs"]
    assert condition.severity == "warning" and "1 COD answer" in condition.text


def sent_hours_ago(order: Order, hours: int) -> None:
    """The order's COD confirmation went out `hours` ago."""
    Message.update(state=State.DELIVERED, sent_at=utcnow() - timedelta(hours=hours)).where(
        (Message.order == order) & (Message.kind == EventKind.COD_CONFIRMATION)
    ).execute()


def test_no_answer_by_the_deadline_writes_the_order_back_as_unconfirmed(
    shop_app, sign, run_jobs, shopify
):
    order = cod_order()
    shop_order = shopify.orders[f"gid://shopify/Order/{order.external_id}"] = ShopOrder()
    sent_hours_ago(order, 2)
    assert write_back_due() == 0  # COD_UNANSWERED_MINUTES (24 h) not over yet
    sent_hours_ago(order, 25)

    assert write_back_due() == 1

    assert Order.get_by_id(order.id).cod_answer == "unanswered"
    assert shop_order.tags == ["cod-unconfirmed"] and not shop_order.cancelled
    assert "did not answer" in shop_order.note
    # A tap after all still counts: the shop hears the answer.
    tap(shop_app.test_client(), sign, f"COD:CONFIRM:{order.id}")
    run_jobs()
    write_back_due()
    assert Order.get_by_id(order.id).cod_answer == "confirmed"
    assert shop_order.tags == ["cod-unconfirmed", "cod-confirmed"]


def test_a_shipped_or_answered_order_is_never_marked_unanswered(shop_app, sign, run_jobs):
    shipped = cod_order()
    Order.update(stage=EventKind.SHIPPED).where(Order.id == shipped.id).execute()
    sent_hours_ago(shipped, 30)
    write_back_due()
    assert Order.get_by_id(shipped.id).cod_answer is None
    assert ShopWriteBack.select().count() == 0


def test_an_unanswered_woocommerce_order_gets_a_note_and_keeps_its_status(shop_app, woo):
    order = cod_order("woocommerce", "4751")
    sent_hours_ago(order, 25)

    write_back_due()

    assert woo.statuses == {} and "did not answer" in woo.notes["4751"][0]


def test_the_dashboard_and_metrics_show_cod_outcomes_and_time_to_answer(
    shop_app, sign, run_jobs, time_machine
):
    from datetime import datetime, time

    from tests.conftest import ADMIN

    # Midday: "an hour ago" is today (just after midnight it was yesterday's row).
    time_machine.move_to(datetime.combine(utcnow().date(), time(12)), tick=True)
    client = shop_app.test_client()
    confirmed = cod_order(external_id="1")
    sent_hours_ago(confirmed, 1)
    tap(client, sign, f"COD:CONFIRM:{confirmed.id}")
    waiting = queued_message(
        phone="+919812345679", kind=EventKind.COD_CONFIRMATION, event_id="e2", order_id="2"
    )
    Message.update(state=State.DELIVERED, sent_at=utcnow()).where(
        Message.id == waiting.id
    ).execute()
    run_jobs()

    html = client.get("/admin/", headers=ADMIN).get_data(as_text=True)
    row = html[html.index(f'data-day="{utcnow().date().isoformat()}"') :]
    row = row[: row.index("</tr>")]
    assert "<td>2</td><td data-confirmed>1</td><td data-cancelled>0</td>" in row
    assert "<td>60.0</td>" in row or "<td>59.9</td>" in row  # about an hour to answer

    metrics = client.get("/metrics", headers=ADMIN).get_data(as_text=True)
    assert 'dakiya_cod_confirmations_14d{answer="confirmed"} 1.0' in metrics
    assert 'dakiya_cod_confirmations_14d{answer="waiting"} 1.0' in metrics
