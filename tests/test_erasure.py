"""After erasure Dakiya keeps only the salted suppression: whatever arrives later for the
number (an order, a redelivered old order event, a customer's message, a WhatsApp
preference, a CSV row, a CRM upsert, an admin) is acknowledged and stores nothing about
them, tells the CRM nothing, and the old dedupe keys still hold."""

from __future__ import annotations

import copy

import pytest

from bot.core.models import (
    ConsentEvent,
    Customer,
    InboundMessage,
    Message,
    Order,
    OrderEvent,
    OutboundEvent,
    UnhandledUpdate,
)
from tests.conftest import ADMIN, load_payload
from tests.test_privacy import all_text_in_database
from tests.webhooks.test_orders import post_generic
from tests.webhooks.test_whatsapp import post_meta, signup_preference

DIGITS = "9812345678"  # Asha's number, +91 98123 45678, as the payloads write it


@pytest.fixture
def client(make_app, settings):
    app = make_app(settings.replace(crm_webhook_urls=("http://127.0.0.1:9/crm",)))
    return app.test_client()


def order(event_id: str, order_id: str = "SO-2026-004750", consent: bool | None = None) -> dict:
    body = copy.deepcopy(load_payload("generic/order_shipped"))
    body["event_id"] = event_id
    body["order"]["id"] = order_id
    body["customer"]["marketing_consent"] = consent
    return body


@pytest.fixture
def erased(client, sign):
    """Asha ordered once (stored, messaged, told to the CRM), then asked to be erased."""
    first = post_generic(client, sign, order("evt-before", consent=True))
    assert first.status_code == 202 and first.get_json()["message_ids"]
    response = client.delete(f"/admin/api/customers/+91{DIGITS}", headers=ADMIN)
    assert response.status_code == 200
    assert DIGITS not in all_text_in_database()
    return OutboundEvent.select().count()


def nothing_personal_stored() -> None:
    assert not Customer.select().exists()
    assert not Order.select().exists()
    assert not Message.select().exists()
    assert not ConsentEvent.select().exists()
    assert not InboundMessage.select().exists()
    assert DIGITS not in all_text_in_database()


def test_a_new_order_for_an_erased_number_is_acknowledged_and_dropped(client, sign, erased, app):
    response = post_generic(client, sign, order("evt-after", "SO-2026-009999", consent=True))

    assert response.status_code == 200  # acknowledged: the shop does not retry
    assert response.get_json() == {
        "event_id": None,
        "message_ids": [],
        "duplicate": False,
        "dropped": "erased",
    }
    nothing_personal_stored()
    assert not OrderEvent.select().where(OrderEvent.external_event_id == "evt-after").exists()
    assert OutboundEvent.select().count() == erased  # the CRM hears nothing
    metrics = client.get("/metrics", headers=ADMIN).get_data(as_text=True)
    dropped = [line for line in metrics.splitlines() if "intake_dropped_total{" in line]
    assert dropped == [
        'dakiya_intake_dropped_total{reason="erased",source="generic",what="order_event"} 1.0'
    ]


def test_a_redelivered_old_event_stays_a_duplicate_after_erasure(client, sign, erased):
    response = post_generic(client, sign, order("evt-before", consent=True))

    assert response.status_code == 200
    body = response.get_json()
    assert (body["duplicate"], body["message_ids"]) == (True, [])
    nothing_personal_stored()
    kept = OrderEvent.get(OrderEvent.external_event_id == "evt-before")
    assert (kept.payload, kept.order_id) == ({}, None)  # a bare dedupe key
    assert OutboundEvent.select().count() == erased


def test_a_message_from_an_erased_number_is_acknowledged_and_not_stored(
    client, sign, erased, run_jobs
):
    text = load_payload("meta/messages")["text"]
    stop = load_payload("meta/other")["user_preferences"]
    for body in (text, stop, signup_preference()):  # signup: kept raw for anyone else
        assert post_meta(client, sign, body).status_code == 200
        run_jobs()

    nothing_personal_stored()
    assert not UnhandledUpdate.select().exists()
    assert OutboundEvent.select().count() == erased


def test_an_import_or_crm_upsert_does_not_store_an_erased_number_again(client, erased):
    csv = f"phone,name,marketing_consent\n+91{DIGITS},Asha,yes\n+919876543210,Ravi,no\n"
    imported = client.post(
        "/admin/api/customers/import",
        data=csv.encode(),
        headers=ADMIN,
        content_type="text/csv; charset=utf-8",
    ).get_json()
    upserted = client.put(
        "/admin/api/customers/bulk",
        json={"customers": [{"phone": f"+91{DIGITS}", "name": "Asha"}]},
        headers=ADMIN,
    ).get_json()

    assert imported["created"] == 1 and upserted["created"] == 0
    for report in (imported, upserted):
        [rejected] = report["rejected"]
        assert rejected["errors"]["phone"][0].startswith("erased:")
    assert [c.phone for c in Customer.select()] == ["+919876543210"]
    assert DIGITS not in all_text_in_database()


def test_an_admin_cannot_add_an_erased_number_back(client, erased):
    response = client.post("/admin/api/customers", json={"phone": f"+91{DIGITS}"}, headers=ADMIN)

    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "erased"
    nothing_personal_stored()
