"""The Graph API version: Meta's retirement dates are data, and admins hear (at start-up in
the log, and from the alert check until it is fixed) when META_API_VERSION retires within
90 days, has retired, or is not a version Dakiya knows."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

from bot.core.config import Settings
from bot.core.config_rules import alert_rules_from_settings
from bot.core.models import Alert, utcnow
from bot.delivery.providers.base import Severity
from bot.delivery.providers.meta_versions import version_news, version_table
from bot.extensions import services
from bot.observability.alerts import check_once

TABLE = version_table()


def test_the_default_version_is_supported_until_2028():
    assert Settings().meta_api_version == "v25.0"
    assert TABLE.retires["v25.0"] == date(2028, 7, 29)
    assert version_news("v25.0", date(2026, 12, 2), TABLE) is None


def test_a_version_retiring_within_90_days_is_a_warning_naming_the_day_and_the_way_out():
    assert version_news("v21.0", date(2026, 10, 22), TABLE) is None  # 91 days before
    news = version_news("v21.0", date(2026, 10, 23), TABLE)  # 90 days before
    assert news.severity is Severity.WARNING
    assert "retires on 2027-01-21 (in 90 days)" in news.text and "v26.0" in news.text
    last = version_news("v21.0", date(2027, 1, 20), TABLE)
    assert "(in 1 day)" in last.text


def test_a_retired_version_is_critical():
    news = version_news("v21.0", date(2027, 1, 21), TABLE)
    assert news.severity is Severity.CRITICAL
    assert "was retired by Meta on 2027-01-21" in news.text
    assert version_news("v20.0", date(2026, 12, 2), TABLE).severity is Severity.CRITICAL


def test_an_unknown_version_or_one_without_a_date_yet():
    news = version_news("v99.1", date(2026, 12, 2), TABLE)
    assert news.severity is Severity.WARNING and "not a Graph API version" in news.text
    assert version_news("v26.0", date(2026, 12, 2), TABLE) is None  # not announced


def test_start_up_warns_in_the_log_when_the_meta_version_retires_soon(
    make_app, meta_settings, caplog, time_machine
):
    time_machine.move_to(datetime(2026, 12, 2, 10, 0, tzinfo=UTC), tick=False)
    with caplog.at_level(logging.WARNING, logger="bot.extensions"):
        make_app(meta_settings.replace(meta_api_version="v21.0"))
    assert any("META_API_VERSION v21.0 retires on 2027-01-21" in r.message for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="bot.extensions"):
        make_app(meta_settings.replace(meta_api_version="v25.0"))
    assert not [r for r in caplog.records if "META_API_VERSION" in r.message]


def test_the_alert_check_fires_until_the_version_is_raised(make_app, meta_settings, time_machine):
    time_machine.move_to(datetime(2027, 1, 22, 10, 0, tzinfo=UTC), tick=False)
    make_app(meta_settings.replace(meta_api_version="v21.0"))
    svc = services()

    def check(settings) -> list[tuple[str, str]]:
        rules = alert_rules_from_settings(settings)
        return [(n.kind, n.key) for n in check_once(svc.redis, svc.queues, rules, utcnow())]

    assert check(svc.settings) == [("firing", "meta_api_version")]
    alert = Alert.get(Alert.key == "meta_api_version")
    assert alert.severity == "critical" and "retired by Meta on 2027-01-21" in alert.text
    assert check(svc.settings.replace(meta_api_version="v25.0")) == [
        ("resolved", "meta_api_version")
    ]


def test_the_sandbox_provider_is_never_alerted_about_meta_versions(app, settings):
    rules = alert_rules_from_settings(settings.replace(meta_api_version="v20.0"))
    assert rules.meta_api_version is None
