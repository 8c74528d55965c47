"""Marketing consent from Shopify's customer topics (PROVIDERS.md §9.5: since API 2025-01
consent no longer travels on the order's customer). Bodies shaped as Shopify's webhook
reference shows the Customer resource and its `sms_marketing_consent`
(tests/payloads/shopify/consent.json); the WhatsApp topic (API 2026-07) is documented by
its GraphQL name only, so its REST name and body are Dakiya's reading (README)."""

from __future__ import annotations

import copy
import json

import pytest

from bot.core.models import ConsentEvent, Customer, OrderEvent
from tests.conftest import load_payload
from tests.webhooks.test_shopify_compliance import post

BODIES = load_payload("shopify/consent")
ASHA = "+919812345678"


def test_an_sms_consent_update_opts_the_customer_in_with_its_evidence(client, sign):
    response = post(
        client,
        sign,
        "customers_marketing_consent/update",
        BODIES["customers_marketing_consent/update"],
        "wh-consent-1",
    )

    assert response.status_code == 200
    assert response.get_json()["changed"] is True
    customer = Customer.get(Customer.phone == ASHA)
    assert customer.marketing_opt_in is True
    [event] = ConsentEvent.select()
    assert (event.action, event.category, event.source) == ("opt_in", "marketing", "shopify")
    assert event.evidence["consent_collected_from"] == "SHOPIFY"
    assert event.evidence["webhook_id"] == "wh-consent-1"
    assert OrderEvent.get().payload == {}


def test_customers_update_on_an_older_api_still_carries_consent(client, sign):
    post(
        client,
        sign,
        "customers_marketing_consent/update",
        BODIES["customers_marketing_consent/update"],
        "wh-c-2",
    )
    post(client, sign, "customers/update", BODIES["customers/update (API 2024-10)"], "wh-c-3")
    assert Customer.get(Customer.phone == ASHA).marketing_opt_in is False
    assert [e.action for e in ConsentEvent.select().order_by(ConsentEvent.id)] == [
        "opt_in",
        "opt_out",
    ]


def test_customers_update_without_consent_is_acknowledged_and_changes_nothing(client, sign):
    response = post(
        client, sign, "customers/update", BODIES["customers/update (API 2025-01)"], "wh-c-4"
    )
    assert response.status_code == 200 and "ignored" in response.get_json()
    assert Customer.select().count() == 0


@pytest.mark.parametrize(
    "topic",
    ["customers_whatsapp_marketing_consent/update", "customers_whats_app_marketing_consent/update"],
)
def test_whatsapp_consent_wins_over_sms_consent(client, sign, topic):
    subscribed = BODIES["customers_marketing_consent/update"]
    post(client, sign, "customers_marketing_consent/update", subscribed, "wh-sms-first")
    body = copy.deepcopy(subscribed)  # SMS still subscribed, WhatsApp not
    key = "whats_app" if "whats_app" in topic else "whatsapp"
    body[f"{key}_marketing_consent"] = {"state": "unsubscribed"}

    post(client, sign, topic, body, "wh-wa-1")

    assert Customer.get(Customer.phone == ASHA).marketing_opt_in is False
    last = ConsentEvent.select().order_by(ConsentEvent.id.desc()).get()
    assert (last.action, last.evidence["channel"]) == ("opt_out", f"{key}_marketing_consent")


def test_a_redelivered_consent_update_is_recorded_once(client, sign):
    body = BODIES["customers_marketing_consent/update"]
    post(client, sign, "customers_marketing_consent/update", body, "wh-c-5")
    again = post(client, sign, "customers_marketing_consent/update", body, "wh-c-5")
    assert again.get_json()["duplicate"] is True
    assert ConsentEvent.select().count() == 1


@pytest.mark.parametrize("state", ["not_subscribed", "pending", None])
def test_a_state_that_is_no_change_records_nothing(client, sign, state):
    body = json.loads(json.dumps(BODIES["customers_marketing_consent/update"]))
    body["sms_marketing_consent"]["state"] = state
    response = post(client, sign, "customers_marketing_consent/update", body, "wh-c-6")
    assert response.status_code == 200 and "ignored" in response.get_json()
    assert ConsentEvent.select().count() == 0


def test_other_customer_topics_are_acknowledged_not_refused(client, sign):
    response = post(client, sign, "customers/create", {"id": 1, "phone": ASHA}, "wh-c-7")
    assert response.status_code == 200 and "ignored" in response.get_json()
