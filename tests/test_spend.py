"""Spend: each message's `pricing` from its receipts is stored once, rolled up per day,
and priced at the rate card in force, in /admin/api/spend, /metrics and on the dashboard;
the shop edits the card as data (PROVIDERS.md §9.2, README "Spend and the rate card")."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta

import pytest

from bot.core.models import AuditLog, Message, MessagePricing, RuntimeSetting, State, utcnow
from bot.delivery.providers.base import Pricing
from bot.delivery.providers.meta import MetaProvider
from bot.observability import spend
from bot.observability.analytics import rollup_recent
from bot.web.admin.spend import CARD_EXAMPLE
from tests.conftest import ADMIN, load_payload
from tests.factories import queued_message
from tests.webhooks.test_whatsapp import post_meta

UTILITY = {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "utility"}
SERVICE = {
    "billable": False,
    "pricing_model": "PMP",
    "type": "free_customer_service",
    "category": "service",
}


def receipt(status: str, wamid: str, phone: str, at: datetime, pricing: dict | None) -> dict:
    """Meta's status webhook (tests/payloads/meta/statuses.json) for `wamid`, at `at`."""
    body = copy.deepcopy(load_payload("meta/statuses")[status])
    entry = body["entry"][0]["changes"][0]["value"]["statuses"][0]
    entry.update(id=wamid, recipient_id=phone.lstrip("+"), timestamp=str(int(at.timestamp())))
    entry.pop("biz_opaque_callback_data", None)
    entry.pop("pricing", None)
    if pricing is not None:
        entry["pricing"] = pricing
    return body


def sent(n: int, phone: str = "+919812345678", template: str | None = None) -> Message:
    """Order update `n`, sent through Meta as wamid.S<n>."""
    message = queued_message(event_id=f"evt-{n}", order_id=str(2000 + n), phone=phone)
    changes = {"state": State.SENT, "provider": "meta", "provider_message_id": f"wamid.S{n}"}
    if template:
        changes["template_name"] = template
    Message.update(**changes).where(Message.id == message.id).execute()
    return Message.get_by_id(message.id)


def deliver(client, sign, message: Message, at: datetime, pricing: dict | None = UTILITY):
    """Meta's sent and delivered receipts for `message`, both priced (as Meta sends them)."""
    for status, when in (("sent", at), ("delivered", at + timedelta(seconds=3))):
        body = receipt(status, message.provider_message_id, message.phone, when, pricing)
        assert post_meta(client, sign, body).status_code == 200


def admin_spend(client, start: date, end: date) -> dict:
    response = client.get(f"/admin/api/spend?from={start}&to={end}", headers=ADMIN)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def by(report: dict, group: str) -> dict:
    return {row["key"]: row for row in report[f"by_{group}"]}


def now_utc() -> datetime:
    return utcnow().replace(microsecond=0)


def test_a_delivered_template_is_priced_once_from_its_receipts(client, sign, run_jobs):
    at = now_utc() - timedelta(minutes=5)
    message = sent(1)
    deliver(client, sign, message, at)
    deliver(client, sign, message, at)  # Meta redelivers the webhook
    run_jobs()

    priced = MessagePricing.get()
    assert MessagePricing.select().count() == 1
    assert (priced.provider, priced.provider_message_id, priced.billable) == (
        "meta",
        "wamid.S1",
        True,
    )
    assert (priced.category, priced.type, priced.pricing_model, priced.country) == (
        "utility",
        "regular",
        "PMP",
        "IN",
    )
    assert priced.priced_at == at.replace(tzinfo=None)
    assert Message.get_by_id(message.id).state == State.DELIVERED


def test_spend_counts_delivered_billable_messages_per_category_template_and_country(
    client, sign, run_jobs
):
    at = now_utc() - timedelta(minutes=10)
    deliver(client, sign, sent(1, template="order_shipped"), at)
    deliver(client, sign, sent(2, template="order_shipped"), at)
    deliver(client, sign, sent(3, template="order_delivered"), at)
    free_reply = sent(4, template="order_shipped")
    deliver(client, sign, free_reply, at, pricing=SERVICE)
    abroad = sent(5, phone="+14155550123", template="order_shipped")  # no US rate on the card
    deliver(client, sign, abroad, at)
    undelivered = sent(6, template="order_shipped")
    body = receipt("sent", undelivered.provider_message_id, undelivered.phone, at, UTILITY)
    post_meta(client, sign, body)
    post_meta(client, sign, receipt("failed", "wamid.S6", undelivered.phone, at, None))
    run_jobs()
    rollup_recent(utcnow(), days=2)

    report = admin_spend(client, at.date() - timedelta(days=1), at.date())
    # 4 delivered billable utility (3 to India at 0.1150, 1 to the US unpriced), 1 free
    # reply; the failed one was billable on its sent receipt but never delivered.
    assert report["currency"] == "INR"
    assert report["totals"] == {
        "billable": 4,
        "free": 1,
        "unpriced": 1,
        "estimated_spend": "0.35",
    }
    assert by(report, "category")["utility"]["estimated_spend"] == "0.35"
    assert by(report, "category")["service"] == {
        "key": "service",
        "billable": 0,
        "free": 1,
        "unpriced": 0,
        "estimated_spend": "0.00",
    }
    templates = by(report, "template")
    assert (templates["order_shipped"]["billable"], templates["order_shipped"]["free"]) == (3, 1)
    assert templates["order_shipped"]["estimated_spend"] == "0.23"
    assert templates["order_delivered"]["estimated_spend"] == "0.12"
    assert by(report, "country")["US"]["unpriced"] == 1
    assert by(report, "country")["IN"]["estimated_spend"] == "0.35"
    assert [row["key"] for row in report["by_day"]] == [at.date().isoformat()]
    assert report["rate_card"]["origin"] == "file"


def test_a_receipt_with_pricing_it_cannot_read_is_applied_and_prices_nothing(
    client, sign, run_jobs
):
    message = sent(1)
    odd = {"billable": "yes", "category": 7}
    deliver(client, sign, message, now_utc(), pricing=odd)
    run_jobs()
    assert Message.get_by_id(message.id).state == State.DELIVERED
    assert MessagePricing.select().count() == 0


def test_a_real_receipt_with_conversation_pricing_is_read_as_it_came():
    """pywa's fixture of a 2024 receipt (conversation-based pricing, no `type`)."""
    updates = MetaProvider.parse_webhook(None, load_payload("meta/real/pywa__message_status__sent"))
    assert [update.pricing for update in updates] == [
        Pricing(billable=True, category="service", type=None, model="CBP")
    ]


def test_sandbox_receipts_are_priced_like_metas(client, run_jobs):
    message = queued_message()
    run_jobs()
    assert Message.get_by_id(message.id).state == State.READ
    priced = MessagePricing.get()
    assert (priced.provider, priced.billable, priced.category, priced.country) == (
        "sandbox",
        True,
        "utility",
        "IN",
    )
    rollup_recent(utcnow(), days=2)  # 5 minutes ago may be yesterday (just after midnight)
    report = admin_spend(client, utcnow().date(), utcnow().date())
    assert report["totals"]["billable"] == 1
    assert report["totals"]["estimated_spend"] == "0.12"


def test_the_spend_query_defaults_to_this_month_and_names_a_bad_range(client):
    today = datetime.now(UTC).date()
    report = client.get("/admin/api/spend", headers=ADMIN).get_json()
    assert (report["from"], report["to"]) == (today.replace(day=1).isoformat(), today.isoformat())
    backwards = client.get("/admin/api/spend?from=2026-11-02&to=2026-11-01", headers=ADMIN)
    assert backwards.status_code == 400
    assert "to" in backwards.get_json()["error"]["fields"]
    too_long = client.get("/admin/api/spend?from=2024-01-01&to=2026-11-01", headers=ADMIN)
    assert too_long.status_code == 400
    assert client.get("/admin/api/spend?from=yesterday", headers=ADMIN).status_code == 400
    assert client.get("/admin/api/spend").status_code == 401


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"currency": "rupees"}, "currency"),
        ({"effective": "soon"}, "effective"),
        ({"source": ""}, "source"),
        ({"rates": {"IN": {"marketting": "0.86"}}}, "rates.IN.value.marketting.key"),
        ({"rates": {"IN": {"marketing": 0.86}}}, "rates.IN.value.marketing.value"),
        ({"rates": {"IN": {"marketing": "-1"}}}, "rates.IN.value.marketing.value"),
        ({"rates": {"IN": {"marketing": "5000"}}}, "rates.IN.value.marketing.value"),
        ({"rates": {"India": {"marketing": "0.86"}}}, "rates.India.key"),
    ],
)
def test_a_bad_rate_card_is_refused_naming_the_field_and_changes_nothing(client, change, field):
    response = client.put("/admin/api/rate-card", json={**CARD_EXAMPLE, **change}, headers=ADMIN)
    assert response.status_code == 400
    assert list(response.get_json()["error"]["fields"]) == [field]
    assert RuntimeSetting.select().count() == 0
    assert AuditLog.select().count() == 0
    assert client.get("/admin/api/rate-card", headers=ADMIN).get_json()["origin"] == "file"


def test_an_edited_rate_card_reprices_spend_and_deleting_it_brings_the_file_back(
    client, sign, run_jobs
):
    at = now_utc() - timedelta(minutes=5)
    deliver(client, sign, sent(1), at)
    deliver(client, sign, sent(2, phone="+14155550123"), at)
    run_jobs()
    rollup_recent(utcnow(), days=2)  # 5 minutes ago may be yesterday (just after midnight)
    day = at.date()
    assert admin_spend(client, day, day)["totals"]["estimated_spend"] == "0.12"

    card = {**CARD_EXAMPLE, "rates": {"IN": {"utility": "0.20"}, "*": {"utility": "1.25"}}}
    saved = client.put("/admin/api/rate-card", json=card, headers=ADMIN)
    assert saved.status_code == 200, saved.get_json()
    assert (saved.get_json()["origin"], saved.get_json()["updated_by"]) == ("admin", "admin")
    report = admin_spend(client, day, day)
    assert report["totals"] == {
        "billable": 2,
        "free": 0,
        "unpriced": 0,
        "estimated_spend": "1.45",
    }
    assert report["rate_card"]["rates"]["*"] == {"utility": "1.25"}
    edit = AuditLog.get(AuditLog.action == "edit_rate_card")
    assert edit.details["before"] is None
    assert edit.details["after"]["rates"]["IN"] == {"utility": "0.20"}

    assert client.delete("/admin/api/rate-card", headers=ADMIN).status_code == 200
    assert client.get("/admin/api/rate-card", headers=ADMIN).get_json()["origin"] == "file"
    assert admin_spend(client, day, day)["totals"]["estimated_spend"] == "0.12"
    assert AuditLog.get(AuditLog.action == "reset_rate_card").details["before"]["currency"] == (
        "INR"
    )
    assert client.delete("/admin/api/rate-card", headers=ADMIN).status_code == 404


def test_metrics_show_this_months_billable_messages_and_spend(client, sign, run_jobs):
    at = now_utc() - timedelta(minutes=5)
    deliver(client, sign, sent(1), at)
    deliver(client, sign, sent(2), at)
    run_jobs()
    rollup_recent(utcnow(), days=2)  # 5 minutes ago may be yesterday (just after midnight)
    text = client.get("/metrics", headers=ADMIN).get_data(as_text=True)
    assert 'dakiya_billable_messages_this_month{category="utility"} 2.0' in text
    assert 'dakiya_estimated_spend_this_month{category="utility",currency="INR"} 0.23' in text


def test_a_message_delivered_the_next_day_counts_on_the_day_it_was_priced(client, sign, run_jobs):
    """The sent receipt prices it; the rollup of that day counts it once it is delivered."""
    yesterday = now_utc() - timedelta(days=1)
    message = sent(1)
    post_meta(client, sign, receipt("sent", "wamid.S1", message.phone, yesterday, UTILITY))
    run_jobs()
    rollup_recent(utcnow(), days=2)
    assert spend.summary(yesterday.date(), utcnow().date(), card())["totals"]["billable"] == 0
    post_meta(client, sign, receipt("delivered", "wamid.S1", message.phone, now_utc(), UTILITY))
    run_jobs()
    rollup_recent(utcnow(), days=2)
    report = spend.summary(yesterday.date(), utcnow().date(), card())
    assert [(row["key"], row["billable"]) for row in report["by_day"]] == [
        (yesterday.date().isoformat(), 1)
    ]


def card():
    from bot.core import runtime
    from bot.core.config import DEFAULT_RATE_CARD_FILE

    return runtime.rate_card(DEFAULT_RATE_CARD_FILE)


def test_erasing_a_customer_keeps_the_spend_but_not_the_wamid_that_holds_their_number(
    client, sign, run_jobs
):
    at = now_utc() - timedelta(minutes=5)
    deliver(client, sign, sent(1), at)
    deliver(client, sign, sent(2, phone="+919812345679"), at)
    run_jobs()

    erased = client.delete("/admin/api/customers/+919812345678", headers=ADMIN)
    assert erased.status_code == 200

    erased_id, kept_id = sorted(row.provider_message_id for row in MessagePricing.select())
    assert kept_id == "wamid.S2"  # the other customer's is untouched
    assert erased_id.startswith("erased:") and "S1" not in erased_id
    rollup_recent(utcnow(), days=2)  # 5 minutes ago may be yesterday (just after midnight)
    assert admin_spend(client, at.date(), at.date())["totals"]["billable"] == 2
