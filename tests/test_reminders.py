"""Reminders: a COD order nobody confirmed gets COD_REMINDER_TEMPLATE after
COD_REMINDER_MINUTES, unless a later event for the order settles it first."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from bot.core.models import EventKind, Message, Reason, State, utcnow
from bot.core.signing import sign_hmac
from bot.extensions import services
from bot.intake.intake import take_order_event
from bot.intake.reminders import CART_REMINDER, COD_REMINDER
from jobs.sweep import sweep_once
from tests.conftest import SECRETS, load_payload
from tests.factories import order_event

#: 11:30 in Kolkata: no quiet hours in the way.
MORNING = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)


@pytest.fixture
def reminder_app(make_app, settings):
    return make_app(settings.replace(cod_reminder_minutes=60, cod_reminder_template="cod_nudge"))


def accept(kind: EventKind, event_id: str) -> None:
    take_order_event(services(), order_event(kind=kind, event_id=event_id), utcnow())


def reminder() -> Message:
    return Message.get(Message.kind == COD_REMINDER)


def test_cod_reminder_is_sent_after_n_minutes_when_nothing_happens(reminder_app, run_jobs):
    with time_machine.travel(MORNING, tick=False) as clock:
        accept(EventKind.COD_CONFIRMATION, "cod-1")
        run_jobs()
        waiting = reminder()
        assert (waiting.state, waiting.template_name) == (State.DEFERRED, "cod_nudge")
        assert waiting.next_attempt_at == utcnow() + timedelta(minutes=60)
        clock.shift(timedelta(minutes=59))
        assert sweep_once(services(), utcnow())["messages_requeued"] == 0
        clock.shift(timedelta(minutes=2))
        assert sweep_once(services(), utcnow())["messages_requeued"] == 1
        run_jobs()
    sent = reminder()
    assert sent.state in (State.SENT, State.DELIVERED, State.READ)
    confirmation = Message.get(Message.kind == EventKind.COD_CONFIRMATION)
    assert sent.params == confirmation.params


@pytest.mark.parametrize("later", [EventKind.CONFIRMED, EventKind.CANCELLED, EventKind.SHIPPED])
def test_cod_reminder_is_cancelled_when_the_order_moves_on_first(reminder_app, run_jobs, later):
    with time_machine.travel(MORNING, tick=False) as clock:
        accept(EventKind.COD_CONFIRMATION, "cod-1")
        clock.shift(timedelta(minutes=10))
        accept(later, "later-1")
        cancelled = reminder()
        assert (cancelled.state, cancelled.reason) == (State.SUPPRESSED, Reason.CANCELLED)
        clock.shift(timedelta(hours=2))
        sweep_once(services(), utcnow())
        run_jobs()
    assert reminder().state == State.SUPPRESSED


def test_redelivered_cod_event_schedules_one_reminder(reminder_app):
    accept(EventKind.COD_CONFIRMATION, "cod-1")
    accept(EventKind.COD_CONFIRMATION, "cod-1")
    accept(EventKind.COD_CONFIRMATION, "cod-2")  # e.g. WooCommerce's order.updated
    assert Message.select().where(Message.kind == COD_REMINDER).count() == 1


def test_no_template_or_zero_minutes_means_no_reminder(make_app, settings):
    make_app(settings.replace(cod_reminder_minutes=0, cod_reminder_template="cod_nudge"))
    accept(EventKind.COD_CONFIRMATION, "cod-1")
    assert not Message.select().where(Message.kind == COD_REMINDER).exists()


# --- Shopify abandoned checkouts -------------------------------------------------------------

CHECKOUT = load_payload("shopify/checkouts_create")
TOKEN = CHECKOUT["token"]


@pytest.fixture
def cart_client(make_app, settings):
    app = make_app(settings.replace(cart_reminder_minutes=45, cart_reminder_template="cart_nudge"))
    return app.test_client()


def post_shopify(client, body: dict, topic: str, webhook_id: str):
    raw = json.dumps(body).encode()
    headers = {
        "X-Shopify-Hmac-Sha256": sign_hmac(SECRETS["shopify_webhook_secret"], raw, "base64"),
        "X-Shopify-Topic": topic,
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Event-Id": f"evt-{webhook_id}",
    }
    response = client.post(
        "/webhooks/orders/shopify", data=raw, headers=headers, content_type="application/json"
    )
    assert response.status_code in (200, 202), response.get_json()


def cart_reminders() -> list[Message]:
    return list(Message.select().where(Message.kind == CART_REMINDER).order_by(Message.id))


def order_from_checkout(**changes) -> dict:
    return {**load_payload("shopify/orders_create"), "checkout_token": TOKEN, **changes}


@pytest.mark.parametrize(
    ("consent", "outcome"),
    [
        ("subscribed", (State.SENT, None)),
        ("not_subscribed", (State.SUPPRESSED, "no_marketing_consent")),
    ],
)
def test_abandoned_checkout_is_reminded_after_n_minutes_with_marketing_consent(
    cart_client, run_jobs, consent, outcome
):
    body = json.loads(json.dumps(CHECKOUT))
    body["customer"]["sms_marketing_consent"]["state"] = consent
    with time_machine.travel(MORNING, tick=False) as clock:
        post_shopify(cart_client, body, "checkouts/create", "c1")
        run_jobs()
        (waiting,) = cart_reminders()
        assert (waiting.state, waiting.category, waiting.template_name) == (
            State.DEFERRED,
            "marketing",
            "cart_nudge",
        )
        assert waiting.params["body"] == ["Asha", CHECKOUT["abandoned_checkout_url"]]
        assert waiting.next_attempt_at == utcnow() + timedelta(minutes=45)
        clock.shift(timedelta(minutes=44))
        assert sweep_once(services(), utcnow())["messages_requeued"] == 0
        clock.shift(timedelta(minutes=2))
        assert sweep_once(services(), utcnow())["messages_requeued"] == 1
        run_jobs()
    (done,) = cart_reminders()
    state = State.SENT if done.state in (State.DELIVERED, State.READ) else done.state
    assert (state, done.reason) == outcome


@pytest.mark.parametrize(
    ("body", "topic"),
    [
        (order_from_checkout(), "orders/create"),
        ({**CHECKOUT, "completed_at": "2026-11-25T11:40:00+05:30"}, "checkouts/update"),
    ],
    ids=["order-from-checkout", "checkout-completed"],
)
def test_cart_reminder_is_cancelled_by_the_order_or_the_completed_checkout(
    cart_client, run_jobs, body, topic
):
    with time_machine.travel(MORNING, tick=False) as clock:
        post_shopify(cart_client, CHECKOUT, "checkouts/create", "c1")
        clock.shift(timedelta(minutes=10))
        post_shopify(cart_client, body, topic, "later-1")
        (cancelled,) = cart_reminders()
        assert (cancelled.state, cancelled.reason) == (State.SUPPRESSED, Reason.CANCELLED)
        clock.shift(timedelta(hours=2))
        sweep_once(services(), utcnow())
        run_jobs()
    assert cart_reminders()[0].state == State.SUPPRESSED


def test_redelivered_and_updated_checkouts_schedule_one_reminder(cart_client):
    post_shopify(cart_client, CHECKOUT, "checkouts/create", "c1")
    post_shopify(cart_client, CHECKOUT, "checkouts/create", "c1")
    post_shopify(cart_client, CHECKOUT, "checkouts/update", "c2")
    assert len(cart_reminders()) == 1


def test_zero_cart_reminder_minutes_means_no_reminder(make_app, settings):
    app = make_app(settings.replace(cart_reminder_minutes=0, cart_reminder_template="cart_nudge"))
    post_shopify(app.test_client(), CHECKOUT, "checkouts/create", "c1")
    assert cart_reminders() == []
