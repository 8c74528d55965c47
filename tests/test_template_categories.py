"""Template re-categorisation (Meta's `template_category_update`, PROVIDERS.md §9.3): the
impending notice alerts with what it affects and changes nothing; the completed notice
makes the template send as marketing from then on, audited and shown in the templates
API. Bodies are Meta's own reference examples (developers.facebook.com, webhooks
reference, template_category_update, "Examples"; tests/payloads/meta/
template_category_update.json) with the template renamed to one the shop's map sends,
and pywa's fixture (tests/payloads/meta/real/)."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from bot.core.models import (
    AuditLog,
    Category,
    Customer,
    Message,
    Reason,
    State,
    TemplateCategory,
    UnhandledUpdate,
    utcnow,
)
from bot.core.notifications import EventKind, NotificationMap, TemplateSpec
from bot.delivery.providers.base import TemplateCategoryNotice
from bot.delivery.providers.meta import MetaProvider
from bot.observability import alerts
from tests.conftest import ADMIN, load_payload
from tests.factories import queued_message
from tests.webhooks.test_whatsapp import post_meta

NOTICES = load_payload("meta/template_category_update")


def notice(kind: str, template: str = "order_shipped", language: str = "en", **value) -> dict:
    """Meta's example `kind` notice about `template` in `language`, sent now."""
    body = copy.deepcopy(NOTICES[kind])
    entry = body["entry"][0]
    entry["time"] = int(utcnow().timestamp()) + value.pop("later", 0)
    change = entry["changes"][0]["value"]
    change.update(message_template_name=template, message_template_language=language, **value)
    return body


def standing(redis_conn) -> dict[str, str]:
    """The provider problems the next alert check would raise, by subject."""
    events = alerts.provider_events(redis_conn, utcnow(), timedelta(days=1))
    return {event.subject: event.text for event in events}


def test_meta_reference_examples_are_read_as_impending_and_completed():
    [impending] = MetaProvider.parse_webhook(None, NOTICES["impending"])
    [completed] = MetaProvider.parse_webhook(None, NOTICES["completed"])
    assert impending == TemplateCategoryNotice(
        provider="meta",
        template="welcome_template",
        language="en_US",  # Meta writes en-US here; the send body says en_US
        category="utility",
        previous=None,
        announced="marketing",
        effective_at=datetime(2025, 5, 2, 7, 0),
        template_id="278077987957091",
        occurred_at=datetime(2025, 5, 1, 7, 0),
    )
    assert not impending.completed
    assert (completed.completed, completed.category, completed.previous) == (
        True,
        "marketing",
        "utility",
    )


def test_a_notice_naming_only_the_new_category_is_a_completed_one():
    """pywa's fixture has neither previous_category nor correct_category."""
    body = load_payload("meta/real/pywa__template_category_update__marketing")
    [update] = MetaProvider.parse_webhook(None, body)
    assert (update.template, update.language, update.category, update.completed) == (
        "my_message_template",
        "he",
        "marketing",
        True,
    )


def test_the_impending_notice_alerts_with_the_events_it_affects_and_changes_nothing(
    client, sign, redis_conn, run_jobs
):
    waiting = queued_message()
    effective = int(utcnow().timestamp()) + 86400
    response = post_meta(client, sign, notice("impending", category_update_timestamp=effective))
    run_jobs()

    assert response.status_code == 200
    text = standing(redis_conn)["template_category:order_shipped:en"]
    assert "order_shipped (en)" in text
    assert "from UTILITY to MARKETING" in text
    assert f"{datetime.utcfromtimestamp(effective):%Y-%m-%d %H:%M} UTC" in text
    assert "order events shipped send it" in text
    assert "need marketing consent" in text
    assert Message.get_by_id(waiting.id).category == Category.UTILITY
    assert TemplateCategory.select().count() == 0
    assert AuditLog.select().count() == 0


def test_the_completed_notice_makes_the_template_marketing_for_waiting_and_new_messages(
    client, sign, redis_conn, run_jobs, take_in
):
    post_meta(client, sign, notice("impending"))
    run_jobs()
    waiting = queued_message()  # queued, customer never opted in to marketing
    other_language = queued_message(event_id="evt-hi", order_id="1043")
    Message.update(language="hi").where(Message.id == other_language.id).execute()

    response = post_meta(client, sign, notice("completed", later=1))
    take_in()  # the notice is taken in while the messages still wait in the queue

    assert response.status_code == 200
    kept = TemplateCategory.get()
    assert (kept.template, kept.language, kept.category, kept.previous_category) == (
        "order_shipped",
        "en",
        "marketing",
        "utility",
    )
    assert Message.get_by_id(waiting.id).category == Category.MARKETING
    assert Message.get_by_id(other_language.id).category == Category.UTILITY
    entry = AuditLog.get(AuditLog.action == "template_category")
    assert (entry.actor, entry.subject) == ("meta", "order_shipped:en")
    assert entry.details == {
        "before": "utility",
        "after": "marketing",
        "template_id": "278077987957091",
        "events": ["shipped"],
        "waiting_now_marketing": 1,
    }
    text = standing(redis_conn)["template_category:order_shipped:en"]
    assert "re-categorised template order_shipped (en) as MARKETING (it was UTILITY)" in text
    assert "1 waiting now marketing" in text

    run_jobs()
    assert Message.get_by_id(waiting.id).reason == Reason.NO_MARKETING_CONSENT
    assert Message.get_by_id(other_language.id).state != State.SUPPRESSED

    # A later shipment in English is created as marketing: it needs consent too.
    later = queued_message(event_id="evt-later", order_id="1044")
    assert later.category == Category.MARKETING
    Customer.update(marketing_opt_in=True).where(Customer.id == later.customer_id).execute()
    opted_in = queued_message(event_id="evt-opted", order_id="1045")
    run_jobs()
    consented = Message.get_by_id(opted_in.id)
    # Sent, or deferred by marketing's quiet hours (the time of day decides), never
    # suppressed for consent.
    assert consented.category == Category.MARKETING
    assert consented.state in (State.DELIVERED, State.READ, State.DEFERRED)
    assert consented.reason != Reason.NO_MARKETING_CONSENT


def test_the_templates_api_shows_what_meta_made_the_template(client, sign, run_jobs):
    post_meta(client, sign, notice("completed"))
    run_jobs()

    items = client.get("/admin/api/templates", headers=ADMIN).get_json()["items"]

    shipped = next(item for item in items if item["event"] == "shipped")
    assert shipped.get("category", "utility") == "utility"  # the map's, as written
    [said] = shipped["meta_categories"]
    assert (said["language"], said["category"], said["previous_category"]) == (
        "en",
        "marketing",
        "utility",
    )
    placed = next(item for item in items if item["event"] == "placed")
    assert placed["meta_categories"] == []


def test_a_redelivered_or_older_completed_notice_changes_nothing(client, sign, run_jobs):
    body = notice("completed")
    post_meta(client, sign, body)
    run_jobs()
    post_meta(client, sign, body)
    run_jobs()
    older = notice("completed", later=-3600, new_category="UTILITY", previous_category="MARKETING")
    post_meta(client, sign, older)
    run_jobs()

    assert TemplateCategory.get().category == "marketing"
    assert AuditLog.select().where(AuditLog.action == "template_category").count() == 1


def test_a_template_meta_moves_back_to_utility_sends_as_the_map_says_again(
    client, sign, redis_conn, run_jobs
):
    post_meta(client, sign, notice("completed"))
    run_jobs()
    waiting = queued_message()
    post_meta(client, sign, notice("impending", later=1))
    run_jobs()
    post_meta(
        client,
        sign,
        notice("completed", later=2, new_category="UTILITY", previous_category="MARKETING"),
    )
    run_jobs()

    assert TemplateCategory.get().category == "utility"
    assert "template_category:order_shipped:en" not in standing(redis_conn)  # cleared
    later = queued_message(event_id="evt-later", order_id="1044")
    assert later.category == Category.UTILITY
    # A message made marketing while it waited is never relaxed again.
    assert Message.get_by_id(waiting.id).category == Category.MARKETING


def test_meta_never_makes_a_template_the_map_calls_marketing_less_strict():
    spec = TemplateSpec(EventKind.SHIPPED, "festive_shipped", ("en",), Category.MARKETING)
    utility = TemplateSpec(EventKind.PLACED, "order_placed", ("en", "hi"))
    said = {("festive_shipped", "en"): "utility", ("order_placed", ""): "marketing"}
    notifications = NotificationMap({spec.kind: spec, utility.kind: utility}, {}, said)
    assert notifications.category_for(spec, "en") == Category.MARKETING
    assert notifications.category_for(utility, "hi") == Category.MARKETING  # every language
    assert notifications.category_for(replace(utility, template="other"), "hi") == (
        Category.UTILITY
    )


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ({"new_category": None}, "new_category"),
        ({"message_template_name": 7}, "message_template_name"),
    ],
)
def test_a_notice_without_its_template_or_category_is_kept_raw(
    client, sign, value, where, run_jobs
):
    body = notice("completed")
    body["entry"][0]["changes"][0]["value"].update(value)

    assert post_meta(client, sign, body).status_code == 200
    run_jobs()

    kept = UnhandledUpdate.get()
    assert kept.kind == "change:template_category_update"
    assert where in kept.detail
    assert TemplateCategory.select().count() == 0
