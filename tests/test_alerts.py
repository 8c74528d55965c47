"""Alert rules: each fires once, stays quiet during the cool-down, reminds after it and
resolves once, against the real database and Redis with the clock frozen."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.config import ConfigError, Settings, validate
from bot.core.config_rules import AlertRules, alert_rules_from_settings
from bot.core.models import Alert, Category, Message, Reason, State, utcnow
from bot.delivery.providers.base import AccountNews, News, Severity
from bot.delivery.providers.meta import MetaProvider
from bot.extensions import services
from bot.observability.alerts import (
    AlertFacts,
    Notice,
    check_once,
    evaluate,
)
from tests.conftest import SECRETS, load_payload

START = datetime(2025, 11, 24, 16, 15, tzinfo=UTC)


@pytest.fixture
def alert_app(make_app, settings, time_machine):
    """The app with a long failure window (so failures outlive the cool-down) and the
    clock frozen at START."""
    time_machine.move_to(START, tick=False)
    return make_app(settings.replace(alert_window_minutes=240))


def check() -> list[tuple[str, str]]:
    """Run one alert check now; (kind, key) of each notice."""
    svc = services()
    notices = check_once(svc.redis, svc.queues, alert_rules_from_settings(svc.settings), utcnow())
    return [(n.kind, n.key) for n in notices]


def assert_fires_reminds_and_resolves(time_machine, key, clear, keep=lambda: None) -> None:
    """The whole life of one condition that holds now: one alert, silence for the
    cool-down (60 min), one reminder, silence, one "resolved" once `clear()` ran."""
    fired_at = utcnow()
    assert check() == [("firing", key)]
    for minutes in (1, 30, 28):  # still firing at +1, +31 and +59 min: nothing new
        time_machine.shift(timedelta(minutes=minutes))
        keep()
        assert check() == [], f"nothing expected at +{minutes} min"
    time_machine.shift(timedelta(minutes=2))  # +61: the cool-down is over
    keep()
    assert check() == [("reminder", key)]
    reminded_at = utcnow()
    time_machine.shift(timedelta(minutes=1))
    keep()
    assert check() == []
    clear()
    assert check() == [("resolved", key)]
    time_machine.shift(timedelta(minutes=1))
    assert check() == []

    alert = Alert.get(Alert.key == key)
    assert (alert.state, alert.fired_at) == ("resolved", fired_at)
    assert alert.notified_at == reminded_at
    assert alert.resolved_at is not None
    assert Alert.select().count() == 1


def make_messages(n: int, state: State, reason: Reason | None = None, **fields) -> None:
    now = utcnow()
    for _ in range(n):
        number = Message.select().count() + 1
        Message.create(
            phone=f"+9198000{number:05d}",
            dedupe_key=f"test:{number}",
            kind="shipped",
            category=Category.UTILITY,
            template_name="order_shipped",
            language="en",
            state=state,
            reason=reason,
            created_at=now,
            updated_at=now,
            **fields,
        )


def post_meta(client, sign, body: dict, signature: str | None = None):
    raw = json.dumps(body).encode()
    signature = signature or "sha256=" + sign(SECRETS["meta_app_secret"], raw)
    return client.post(
        "/webhooks/whatsapp/meta", data=raw, headers={"X-Hub-Signature-256": signature}
    )


# --- each rule's life ---------------------------------------------------------------


def test_failure_rate_alert_fires_once_reminds_after_the_cooldown_and_resolves(
    alert_app, time_machine
):
    make_messages(5, State.FAILED, Reason.PROVIDER_REJECTED, failed_at=utcnow())
    make_messages(15, State.DELIVERED, sent_at=utcnow())  # 25% of 20 failed

    def clear():
        make_messages(30, State.SENT, sent_at=utcnow())  # 5 of 50: 10%

    assert_fires_reminds_and_resolves(time_machine, "failure_rate", clear)


def test_failure_rate_needs_the_minimum_volume(alert_app):
    make_messages(5, State.FAILED, Reason.PROVIDER_REJECTED, failed_at=utcnow())
    make_messages(14, State.SENT, sent_at=utcnow())  # 19 finished < ALERT_MIN_VOLUME 20
    assert check() == []


def test_dead_letter_alert_fires_once_reminds_and_resolves_when_it_leaves_the_window(
    alert_app, time_machine
):
    make_messages(1, State.FAILED, Reason.RETRIES_EXHAUSTED, failed_at=utcnow())

    def clear():
        time_machine.shift(timedelta(minutes=240))  # out of ALERT_WINDOW_MINUTES

    assert_fires_reminds_and_resolves(time_machine, "dead_letters", clear)
    assert "1 message(s) gave up" in Alert.get().text


def test_queue_age_alert_fires_for_the_oldest_rq_job_and_resolves_when_drained(
    alert_app, time_machine
):
    queue = services().queues["orders"]
    queue.enqueue("jobs.send.send_message", 123456, result_ttl=0)
    time_machine.shift(timedelta(seconds=299))
    assert check() == []
    time_machine.shift(timedelta(seconds=1))

    assert_fires_reminds_and_resolves(time_machine, "queue_age:orders", queue.empty)


def test_no_send_alert_fires_while_messages_wait_and_resolves_after_a_send(
    make_app, settings, time_machine
):
    time_machine.move_to(START, tick=False)
    make_app(settings.replace(alert_queue_age_seconds=0))  # only the no-send rule
    make_messages(1, State.SENT, sent_at=utcnow() - timedelta(hours=3))
    make_messages(1, State.QUEUED)
    time_machine.shift(timedelta(minutes=14))
    assert check() == []
    time_machine.shift(timedelta(minutes=1))

    def clear():
        Message.update(state=State.SENT, sent_at=utcnow()).where(
            Message.state == State.QUEUED
        ).execute()

    assert_fires_reminds_and_resolves(time_machine, "no_send", clear)


def test_a_message_waiting_in_the_database_raises_the_queue_age_alert(alert_app, time_machine):
    make_messages(1, State.QUEUED)
    time_machine.shift(timedelta(minutes=5))
    assert ("firing", "queue_age:messages") in check()


def test_signature_failure_spike_alerts_once_and_resolves_when_it_stops(
    alert_app, client, sign, time_machine
):
    body = load_payload("meta/other")["user_preferences"]

    def spike():
        for _ in range(20):
            assert post_meta(client, sign, body, "sha256=" + "0" * 64).status_code == 401

    for _ in range(19):
        post_meta(client, sign, body, "sha256=bad")
    assert check() == []
    spike()

    def clear():
        time_machine.shift(timedelta(minutes=11))  # two 5-minute buckets later

    assert_fires_reminds_and_resolves(
        time_machine, "signature_failures:whatsapp:meta", clear, keep=spike
    )


def test_order_webhook_signature_failures_are_counted_per_source(alert_app, client):
    for _ in range(20):
        response = client.post(
            "/webhooks/orders/shopify", data=b"{}", headers={"X-Shopify-Hmac-Sha256": "bad"}
        )
        assert response.status_code == 401
    assert check() == [("firing", "signature_failures:orders:shopify")]


@pytest.mark.parametrize(
    ("problem", "cleared", "key", "words"),
    [
        ("template_paused", "template_approved", "provider:template:order_shipped:en", "PAUSED"),
        (
            "phone_number_quality_flagged",
            "phone_number_quality_unflagged",
            "provider:quality:15550783881",
            "FLAGGED",
        ),
        ("account_disabled", "account_reinstated", "provider:account", "DISABLE"),
    ],
)
def test_meta_account_webhook_alerts_and_resolves_when_meta_clears_it(
    alert_app, client, sign, time_machine, problem, cleared, key, words, run_jobs, take_in
):
    payloads = load_payload("meta/other")
    assert post_meta(client, sign, payloads[problem]).json == {"accepted": True}
    run_jobs()

    assert_fires_reminds_and_resolves(
        time_machine, key, lambda: (post_meta(client, sign, payloads[cleared]), take_in())
    )
    run_jobs()
    assert words in Alert.get().text


def test_rejected_template_and_account_violation_alert_with_their_reason(
    alert_app, client, sign, run_jobs
):
    payloads = load_payload("meta/other")
    post_meta(client, sign, payloads["template_rejected"])
    run_jobs()
    post_meta(client, sign, payloads["account_violation"])
    run_jobs()
    assert sorted(check()) == [
        ("firing", "provider:account"),
        ("firing", "provider:template:order_placed:hi"),
    ]
    texts = {a.key: a.text for a in Alert.select()}
    assert (
        "Variable parameters are not defined properly" in texts["provider:template:order_placed:hi"]
    )
    assert "SCAM" in texts["provider:account"]


def test_harmless_account_news_raises_nothing(alert_app, client, sign):
    payloads = load_payload("meta/other")
    post_meta(client, sign, payloads["phone_number_throughput_upgrade"])
    post_meta(client, sign, payloads["account_partner_added"])
    assert check() == []


def test_an_older_redelivered_problem_does_not_undo_a_newer_all_clear(alert_app, client, sign):
    payloads = load_payload("meta/other")
    post_meta(client, sign, payloads["template_approved"])  # 17:10 UTC
    post_meta(client, sign, payloads["template_paused"])  # 16:10 UTC, redelivered late
    assert check() == []


def test_a_provider_problem_without_an_all_clear_resolves_after_its_lifetime(
    alert_app, client, sign, time_machine, run_jobs
):
    post_meta(client, sign, load_payload("meta/other")["account_violation"])
    run_jobs()
    assert check() == [("firing", "provider:account")]
    time_machine.shift(timedelta(hours=24))
    assert check() == [("resolved", "provider:account")]


# --- parsing and pure rules -------------------------------------------------------------


def unknown_field_body(n: int) -> dict:
    """A signed Meta delivery with one change of a field Dakiya does not act on."""
    body = load_payload("meta/other")["phone_number_quality_flagged"]
    change = body["entry"][0]["changes"][0]
    change["field"] = "user_id_update"
    change["value"] = {"n": n}
    return body


def test_unhandled_updates_alert_once_past_the_hourly_threshold_and_resolve_an_hour_later(
    alert_app, client, sign, time_machine, run_jobs
):
    for n in range(19):
        assert post_meta(client, sign, unknown_field_body(n)).status_code == 200
        run_jobs()
    assert check() == []  # 19 in the hour: below the default threshold of 20
    post_meta(client, sign, unknown_field_body(19))
    run_jobs()
    assert check() == [("firing", "unhandled_updates:meta")]
    assert Alert.get().text.startswith("20 parts of meta webhooks in the last hour were kept")
    assert "unknown_field 20" in Alert.get().text
    time_machine.shift(timedelta(minutes=61))
    assert check() == [("resolved", "unhandled_updates:meta")]


def test_unhandled_updates_alert_can_be_turned_off(make_app, settings, client, sign):
    make_app(settings.replace(alert_unhandled_updates=0))
    for n in range(25):
        post_meta(client, sign, unknown_field_body(n))
    assert check() == []


def test_meta_account_fields_parse_into_account_news():
    provider = MetaProvider(Settings())
    [news] = provider.parse_webhook(load_payload("meta/other")["template_paused"])
    assert news == AccountNews(
        provider="meta",
        kind=News.PROBLEM,
        subject="template:order_shipped:en",
        severity=Severity.WARNING,
        text=news.text,
        occurred_at=datetime(2025, 11, 24, 16, 10),
    )
    assert news.text.startswith("template order_shipped (en) is PAUSED")


NOW = datetime(2025, 11, 24, 12, 0)


@pytest.mark.parametrize(
    ("facts", "rules", "keys"),
    [
        (AlertFacts(finished=100, failed=20), AlertRules(), ["failure_rate"]),
        (AlertFacts(finished=100, failed=19), AlertRules(), []),
        (AlertFacts(finished=100, failed=90), AlertRules(failure_rate=0), []),
        (AlertFacts(dead_letters=3), AlertRules(dead_letters=0), []),
        (
            AlertFacts(queue_ages={"orders": 10, "campaigns": 301}),
            AlertRules(),
            ["queue_age:campaigns"],
        ),
        (
            AlertFacts(oldest_due_at=NOW - timedelta(minutes=20), last_sent_at=NOW),
            AlertRules(),
            ["queue_age:messages"],
        ),
        (AlertFacts(signature_failures={"whatsapp:meta": 19}), AlertRules(), []),
        (
            AlertFacts(unhandled_updates={"meta": {"malformed": 15, "unknown_type": 5}}),
            AlertRules(),
            ["unhandled_updates:meta"],
        ),
        (AlertFacts(unhandled_updates={"interakt": {"unknown_type": 19}}), AlertRules(), []),
        (
            AlertFacts(unhandled_updates={"meta": {"malformed": 99}}),
            AlertRules(unhandled_updates=0),
            [],
        ),
    ],
)
def test_rule_thresholds(facts, rules, keys):
    assert [c.key for c in evaluate(facts, rules, NOW)] == keys


def test_alert_text_carries_the_numbers():
    [condition] = evaluate(AlertFacts(finished=40, failed=14), AlertRules(), NOW)
    assert condition.text.startswith("35% of messages failed in the last 15 min (14 of 40;")
    notice = Notice(condition.key, "firing", condition.severity, condition.text, NOW)
    assert notice.as_text().startswith("[Dakiya] ALERT: failure_rate - 35% of messages")


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"smtp_url": "smtp://mail.example.com"}, "ALERT_EMAIL_TO"),
        ({"smtp_url": "mail.example.com", "alert_email_to": ("a@b.c",)}, "SMTP_URL"),
        ({"alert_whatsapp_numbers": ("+919800000001",)}, "ALERT_WHATSAPP_TEMPLATE"),
        ({"alert_failure_rate": 1.5}, "ALERT_FAILURE_RATE"),
        ({"alert_cooldown_minutes": 0}, "ALERT_COOLDOWN_MINUTES"),
        ({"alert_slack_webhook_url": "hooks.slack.com/x"}, "ALERT_SLACK_WEBHOOK_URL"),
        ({"alert_unhandled_updates": -1}, "ALERT_UNHANDLED_UPDATES"),
    ],
)
def test_bad_alert_settings_stop_start_up_naming_the_variable(settings, changes, named):
    with pytest.raises(ConfigError, match=named):
        validate(settings.replace(**changes))
