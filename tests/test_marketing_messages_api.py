"""Meta's Marketing Messages API (PROVIDERS.md §9.3): with META_MARKETING_MESSAGES_API on,
marketing templates go to POST /<phone-number-id>/marketing_messages with the body they
would have had on /messages; utility templates and replies stay on /messages. A template
Meta refuses on /messages as marketing (131063) is decided again as marketing and resent
there once. MARKETING_TTL_SECONDS drops a marketing message rather than send it late."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from bot.core.config import ConfigError, validate
from bot.core.config_rules import alert_rules_from_settings
from bot.core.models import Category, Customer, Message, Reason, Route, State, utcnow
from bot.delivery.providers.meta import message_body
from bot.delivery.sending import build_outbound
from bot.extensions import services
from bot.observability.alerts import check_once
from tests.conftest import ADMIN
from tests.factories import marketing_message, queued_message
from tests.fakes.provider_server import meta_error

MARKETING_EDGE = "/marketing_messages"


@pytest.fixture
def mm_settings(meta_settings):
    """The API on; marketing at any hour and no pair gap, so routing is what is seen."""
    return meta_settings.replace(
        meta_marketing_messages_api=True, quiet_hours_marketing="", min_gap_seconds=0
    )


@pytest.fixture
def mm_app(make_app, mm_settings):
    return make_app(mm_settings)


def send(message: Message) -> None:
    services().queues[message.queue].enqueue("jobs.send.send_message", message.id)


def paths(fake_whatsapp) -> list[str]:
    return [r.path.rpartition("/")[2] for r in fake_whatsapp.requests]


def alert_keys() -> list[tuple[str, str]]:
    svc = services()
    rules = alert_rules_from_settings(svc.settings)
    return [(n.kind, n.key) for n in check_once(svc.redis, svc.queues, rules, utcnow())]


def test_a_marketing_template_goes_to_marketing_messages_with_the_body_of_messages(
    mm_app, fake_whatsapp, run_jobs
):
    message = marketing_message()
    expected = message_body(build_outbound(message))
    send(message)
    run_jobs()

    [request] = fake_whatsapp.requests
    svc = services().settings
    assert request.path == f"/{svc.meta_api_version}/{svc.meta_phone_number_id}{MARKETING_EDGE}"
    assert request.json == expected
    assert request.headers["Authorization"].startswith("Bearer ")
    message = Message.get_by_id(message.id)
    assert (message.state, message.route) == (State.SENT, Route.MARKETING_MESSAGES)
    shown = mm_app.test_client().get(f"/admin/api/messages/{message.id}", headers=ADMIN)
    assert shown.get_json()["route"] == "marketing_messages"


def test_order_updates_and_replies_stay_on_messages_with_the_api_on(
    mm_app, fake_whatsapp, run_jobs
):
    update = queued_message()  # a utility template
    run_jobs()
    customer = Customer.get_by_id(update.customer_id)
    Customer.update(last_inbound_at=utcnow()).where(Customer.id == customer.id).execute()
    reply = Message.create(
        customer=customer,
        phone=customer.phone,
        dedupe_key="reply:1",
        kind="reply",
        category=Category.SERVICE,
        queue="orders",
        language="en",
        text="Your order is on its way",
    )
    send(reply)
    run_jobs()

    assert paths(fake_whatsapp) == ["messages", "messages"]
    for row in (update, reply):
        assert Message.get_by_id(row.id).route is None


def test_with_the_api_off_marketing_goes_to_messages(
    make_app, meta_settings, fake_whatsapp, run_jobs
):
    make_app(meta_settings.replace(quiet_hours_marketing="", min_gap_seconds=0))
    message = marketing_message()
    send(message)
    run_jobs()
    assert paths(fake_whatsapp) == ["messages"]
    assert Message.get_by_id(message.id).route is None


def test_a_template_meta_refuses_as_marketing_is_resent_once_through_the_api_as_marketing(
    mm_app, fake_whatsapp, run_jobs
):
    """The order event's template is utility in Dakiya's map, marketing to Meta: /messages
    answers 131063; the customer opted in to marketing, so it goes out through the API."""
    message = queued_message()
    Customer.update(marketing_opt_in=True).execute()
    fake_whatsapp.marketing_only_templates.add(message.template_name)

    run_jobs()
    time.sleep(1.1)  # the resend is due at once, kicked on the next whole second
    run_jobs()

    assert paths(fake_whatsapp) == ["messages", "marketing_messages"]
    first, second = (r.json for r in fake_whatsapp.requests)
    assert first == second  # the same message, to the other edge
    message = Message.get_by_id(message.id)
    assert (message.state, message.category, message.route) == (
        State.SENT,
        Category.MARKETING,
        Route.MARKETING_MESSAGES_AFTER_REFUSAL,
    )
    assert ("firing", "rerouted:marketing_disabled") in alert_keys()


def test_a_refused_template_is_not_resent_to_a_customer_without_marketing_consent(
    mm_app, fake_whatsapp, run_jobs
):
    message = queued_message()
    fake_whatsapp.marketing_only_templates.add(message.template_name)

    run_jobs()
    time.sleep(1.1)
    run_jobs()

    assert paths(fake_whatsapp) == ["messages"]
    message = Message.get_by_id(message.id)
    assert (message.state, message.reason, message.category) == (
        State.SUPPRESSED,
        Reason.NO_MARKETING_CONSENT,
        Category.MARKETING,
    )


def test_a_refusal_on_the_api_too_fails_the_message_after_one_resend(
    mm_app, fake_whatsapp, run_jobs
):
    message = queued_message()
    Customer.update(marketing_opt_in=True).execute()
    refusal = (400, meta_error(131063, "Marketing templates disabled for Cloud API"))
    fake_whatsapp.script(refusal, refusal, refusal)

    run_jobs()
    time.sleep(1.1)
    run_jobs()
    time.sleep(1.1)
    run_jobs()

    assert paths(fake_whatsapp) == ["messages", "marketing_messages"]
    message = Message.get_by_id(message.id)
    assert (message.state, message.reason) == (State.FAILED, Reason.MARKETING_DISABLED)


def test_without_the_api_a_refused_template_fails_and_alerts(
    make_app, meta_settings, fake_whatsapp, run_jobs
):
    make_app(meta_settings)
    message = queued_message()
    fake_whatsapp.marketing_only_templates.add(message.template_name)
    run_jobs()
    message = Message.get_by_id(message.id)
    assert (message.state, message.reason, message.route) == (
        State.FAILED,
        Reason.MARKETING_DISABLED,
        None,
    )
    assert paths(fake_whatsapp) == ["messages"]
    assert alert_keys() == [("firing", "refused:marketing_disabled")]


def test_a_template_not_yet_synced_to_the_api_is_tried_again_ten_minutes_later(
    mm_app, fake_whatsapp, run_jobs
):
    """131009 on /marketing_messages: a new or dormant template needs up to ten minutes
    to sync (§9.3); on /messages the same code is a bad parameter and final."""
    fake_whatsapp.script((400, meta_error(131009, "Parameter value is not valid")))
    message = marketing_message()
    send(message)
    run_jobs()
    message = Message.get_by_id(message.id)
    assert (message.state, message.reason, message.error_code) == (
        State.QUEUED,
        Reason.RETRYING,
        "131009",
    )
    assert message.next_attempt_at >= utcnow() + timedelta(minutes=9)

    fake_whatsapp.script((400, meta_error(131009, "Parameter value is not valid")))
    update = queued_message(event_id="e2", order_id="o2")
    run_jobs()
    assert Message.get_by_id(update.id).state == State.FAILED


def test_a_marketing_message_held_past_its_time_to_live_is_never_sent(
    make_app, meta_settings, fake_whatsapp, run_jobs
):
    make_app(
        meta_settings.replace(
            quiet_hours_marketing="", min_gap_seconds=0, marketing_ttl_seconds=3600
        )
    )
    stale, fresh = marketing_message(key="old"), marketing_message(customer_phone="+919812345679")
    Message.update(created_at=utcnow() - timedelta(hours=2)).where(Message.id == stale.id).execute()
    for message in (stale, fresh):
        send(message)
    run_jobs()

    stale, fresh = Message.get_by_id(stale.id), Message.get_by_id(fresh.id)
    assert (stale.state, stale.reason) == (State.SUPPRESSED, Reason.EXPIRED)
    assert fresh.state == State.SENT
    assert len(fake_whatsapp.requests) == 1


def test_the_time_to_live_never_drops_an_order_update(make_app, settings, run_jobs):
    make_app(settings.replace(marketing_ttl_seconds=60))
    message = queued_message()
    Message.update(created_at=utcnow() - timedelta(hours=2)).where(
        Message.id == message.id
    ).execute()
    run_jobs()
    assert Message.get_by_id(message.id).state in (State.SENT, State.DELIVERED, State.READ)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"meta_marketing_messages_api": True}, "META_MARKETING_MESSAGES_API"),
        ({"marketing_ttl_seconds": 30}, "MARKETING_TTL_SECONDS"),
        ({"marketing_ttl_seconds": 31 * 86400}, "MARKETING_TTL_SECONDS"),
    ],
)
def test_settings_that_cannot_work_are_refused_naming_the_variable(settings, changes, named):
    with pytest.raises(ConfigError, match=named):
        validate(settings.replace(whatsapp_provider="sandbox", **changes))
