"""Meta's 2026 error codes (PROVIDERS.md §9.1, §9.3): each fails the message at once with a
reason in Dakiya's words (shown by the admin API), whether it comes on the send's answer or
on a receipt, and those that say the account or number cannot send raise a critical alert."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.core.config_rules import alert_rules_from_settings
from bot.core.models import Alert, Message, Reason, State, utcnow
from bot.delivery import statuses
from bot.delivery.providers.base import DeliveryStatus, StatusUpdate
from bot.extensions import services
from bot.observability.alerts import check_once
from tests.conftest import ADMIN
from tests.factories import queued_message
from tests.fakes.provider_server import meta_error

#: code -> the reason the message fails with (written out from §9, not from the code).
REASONS = {
    131062: Reason.BSUID_NOT_SUPPORTED,
    131063: Reason.MARKETING_DISABLED,
    131064: Reason.ACCOUNT_LIMITED,
    130497: Reason.COUNTRY_BLOCKED,
    131037: Reason.NUMBER_NOT_READY,
    131045: Reason.NUMBER_NOT_READY,
    133010: Reason.NUMBER_NOT_READY,
    133016: Reason.NUMBER_NOT_READY,
    137000: Reason.RECIPIENT_CHANGED,
}
ALERTING = {
    Reason.MARKETING_DISABLED,
    Reason.ACCOUNT_LIMITED,
    Reason.COUNTRY_BLOCKED,
    Reason.NUMBER_NOT_READY,
}


@pytest.fixture
def meta_app(make_app, meta_settings):
    return make_app(meta_settings)


def alert_check() -> list[tuple[str, str]]:
    svc = services()
    rules = alert_rules_from_settings(svc.settings)
    return [(n.kind, n.key) for n in check_once(svc.redis, svc.queues, rules, utcnow())]


@pytest.mark.parametrize("code", REASONS, ids=str)
def test_a_2026_code_on_the_send_fails_once_with_its_reason_and_alerts_if_the_account_is_at_fault(
    meta_app, fake_whatsapp, run_jobs, code
):
    fake_whatsapp.script((400, meta_error(code, "refused", details="refused")))
    message = queued_message()
    run_jobs()
    run_jobs()
    message = Message.get_by_id(message.id)
    assert (message.state, message.reason, message.error_code) == (
        State.FAILED,
        REASONS[code],
        str(code),
    )
    assert len(fake_whatsapp.requests) == 1  # never retried
    body = meta_app.test_client().get(f"/admin/api/messages/{message.id}", headers=ADMIN)
    assert body.get_json()["reason"] == REASONS[code].value
    key = f"refused:{REASONS[code].value}"
    assert alert_check() == ([("firing", key)] if REASONS[code] in ALERTING else [])


def test_the_same_code_on_a_receipt_gives_the_same_reason(app):
    message = queued_message()
    Message.update(state=State.SENT, provider="meta", provider_message_id="wamid.X").where(
        Message.id == message.id
    ).execute()
    update = StatusUpdate(
        provider="meta",
        provider_message_id="wamid.X",
        status=DeliveryStatus.FAILED,
        occurred_at=utcnow(),
        error_code="130497",
        error_text="Business account is restricted from messaging users in this country",
    )
    for event_id in statuses.record_updates([update], utcnow()):
        statuses.apply_status_event(event_id, utcnow())
    message = Message.get_by_id(message.id)
    assert (message.state, message.reason) == (State.FAILED, Reason.COUNTRY_BLOCKED)


def test_the_account_alert_resolves_once_the_refusals_stop(
    meta_app, fake_whatsapp, run_jobs, time_machine
):
    time_machine.move_to(utcnow(), tick=False)
    fake_whatsapp.script((400, meta_error(131037, "display name not approved", None)))
    queued_message()
    run_jobs()
    assert alert_check() == [("firing", "refused:number_not_ready")]
    alert = Alert.get(Alert.key == "refused:number_not_ready")
    assert alert.severity == "critical" and "display name" in alert.text
    time_machine.shift(timedelta(hours=1))  # beyond the 15-minute window: no new refusals
    assert alert_check() == [("resolved", "refused:number_not_ready")]
