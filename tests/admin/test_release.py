"""Releasing messages that wait (issue 17, item 7): an admin's "send now", deferrals
decided again when the policy setting behind them changes, and clearing a run-time
setting back to the environment's value. The policy still decides at send time."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from bot.core.models import AuditLog, Message, Reason, State, utcnow
from bot.delivery import dispatch
from bot.extensions import services
from tests.conftest import ADMIN, VIEWER, basic_auth
from tests.factories import marketing_message, queued_message

JSON = {"Content-Type": "application/json"}
SENT = {State.SENT, State.DELIVERED, State.READ}
#: 22:30 in Kolkata: inside the default marketing quiet hours (21:00-09:00).
EVENING = datetime(2030, 1, 10, 17, 0)
#: 09:00 in Kolkata the next morning, when those quiet hours end.
MORNING = datetime(2030, 1, 11, 3, 30)


@pytest.fixture
def evening(time_machine):
    time_machine.move_to(EVENING, tick=False)
    return time_machine


def patch_settings(client, body):
    return client.patch("/admin/api/settings", data=json.dumps(body), headers={**ADMIN, **JSON})


def deferred_by_quiet_hours(run_jobs, **kwargs) -> Message:
    """A campaign's marketing message, sent at 22:30 Kolkata time: deferred to 09:00."""
    message = marketing_message(**kwargs)
    dispatch.kick(services().queues, "campaigns")
    run_jobs()
    message = Message.get_by_id(message.id)
    assert (message.state, message.reason, message.next_attempt_at) == (
        State.DEFERRED,
        Reason.QUIET_HOURS,
        MORNING,
    )
    return message


def send_now(client, message_id, headers=ADMIN):
    return client.post(f"/admin/api/messages/{message_id}/send-now", headers=headers)


# --- send now ------------------------------------------------------------------------


def test_send_now_sends_a_message_whose_deferral_no_longer_applies(client, run_jobs, evening):
    # Deferred by quiet hours; then the deploy turned them off (the row still waits).
    message = queued_message()
    Message.update(state=State.DEFERRED, reason=Reason.QUIET_HOURS, next_attempt_at=MORNING).where(
        Message.id == message.id
    ).execute()
    answer = send_now(client, message.id)
    assert answer.status_code == 202
    assert answer.get_json()["next_attempt_at"] == utcnow().isoformat() + "+00:00"
    run_jobs()
    assert Message.get_by_id(message.id).state in SENT
    entry = AuditLog.get(AuditLog.action == "send_now")
    assert (entry.actor, entry.subject) == ("admin", str(message.id))
    assert entry.details["before"] == {
        "state": "deferred",
        "reason": "quiet_hours",
        "next_attempt_at": MORNING.isoformat() + "Z",
    }


def test_send_now_still_goes_through_the_policy(client, run_jobs, evening):
    message = deferred_by_quiet_hours(run_jobs)
    assert send_now(client, message.id).status_code == 202
    run_jobs()
    again = Message.get_by_id(message.id)  # quiet hours still apply: deferred once more
    assert (again.state, again.reason, again.next_attempt_at) == (
        State.DEFERRED,
        Reason.QUIET_HOURS,
        MORNING,
    )
    assert again.sent_at is None


def test_send_now_refuses_a_sent_message_a_viewer_and_a_cross_site_form(client, run_jobs):
    sent = queued_message()
    run_jobs()
    assert Message.get_by_id(sent.id).state in SENT
    refused = send_now(client, sent.id)
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "not_waiting"
    assert send_now(client, 999).status_code == 404
    waiting = queued_message(event_id="evt-2", order_id="1002")
    Message.update(state=State.DEFERRED, next_attempt_at=MORNING).where(
        Message.id == waiting.id
    ).execute()
    assert send_now(client, waiting.id, headers=VIEWER).status_code == 403
    form = send_now(client, waiting.id, headers=basic_auth("admin", "correct horse"))
    assert form.status_code == 403
    assert form.get_json()["error"]["code"] == "cross_site_request"
    assert Message.get_by_id(waiting.id).next_attempt_at == MORNING
    assert not AuditLog.select().where(AuditLog.action == "send_now").exists()


# --- settings changes ------------------------------------------------------------------


def test_turning_quiet_hours_off_releases_what_they_deferred(client, run_jobs, evening):
    message = deferred_by_quiet_hours(run_jobs)
    capped = deferred_by_quiet_hours(run_jobs, customer_phone="+919812345679", key="m2")
    Message.update(reason=Reason.CAP_DAILY).where(Message.id == capped.id).execute()

    unchanged = patch_settings(client, {"quiet_hours_marketing": "21:00-09:00"})  # as before
    assert unchanged.status_code == 200
    assert Message.get_by_id(message.id).next_attempt_at == MORNING

    assert patch_settings(client, {"quiet_hours_marketing": "off"}).status_code == 200
    released = Message.get_by_id(message.id)
    # Due within seconds: once every process has read the new settings.
    assert released.state == State.DEFERRED
    assert utcnow() < released.next_attempt_at <= utcnow() + timedelta(seconds=10)
    assert Message.get_by_id(capped.id).next_attempt_at == MORNING  # a cap: not this setting
    entry = AuditLog.select().where(AuditLog.action == "change_settings").order_by(AuditLog.id)
    assert [e.details["released"] for e in entry] == [0, 1]

    evening.shift(timedelta(seconds=10))
    run_jobs()
    assert Message.get_by_id(message.id).state in SENT
    assert Message.get_by_id(capped.id).state == State.DEFERRED


def test_a_changed_cap_releases_only_the_deferrals_of_its_category(client, run_jobs, evening):
    marketing = deferred_by_quiet_hours(run_jobs)
    utility = queued_message()
    for row, category in ((marketing, "marketing"), (utility, "utility")):
        Message.update(
            state=State.DEFERRED, reason=Reason.CAP_DAILY, next_attempt_at=MORNING
        ).where(Message.id == row.id).execute()
        assert Message.get_by_id(row.id).category == category
    assert patch_settings(client, {"utility_daily_cap": 5}).status_code == 200
    assert Message.get_by_id(marketing.id).next_attempt_at == MORNING
    assert Message.get_by_id(utility.id).next_attempt_at < MORNING
    evening.shift(timedelta(seconds=10))
    run_jobs()
    assert Message.get_by_id(utility.id).state in SENT


# --- clearing a run-time setting -------------------------------------------------------


def test_null_clears_a_run_time_setting_back_to_the_environments_value(client):
    assert (
        patch_settings(client, {"marketing_daily_cap": 2, "min_gap_seconds": 0}).status_code == 200
    )
    cleared = patch_settings(client, {"marketing_daily_cap": None})
    assert cleared.status_code == 200
    body = cleared.get_json()
    assert (body["marketing_daily_cap"], body["min_gap_seconds"]) == (1, 0)  # 1: the default
    assert body["overridden"] == ["min_gap_seconds"]
    assert services().sender().rules.caps["marketing"].daily == 1
    shown = client.get("/admin/api/settings", headers=ADMIN).get_json()
    assert shown["overridden"] == ["min_gap_seconds"] and shown["marketing_daily_cap"] == 1
    entry = AuditLog.select().where(AuditLog.action == "change_settings").order_by(AuditLog.id)
    assert entry[-1].details["after"] == {"marketing_daily_cap": None}
    # Clearing what was never changed is no change at all.
    assert patch_settings(client, {"utility_daily_cap": None}).status_code == 200


def test_clearing_quiet_hours_defers_released_messages_again(client, run_jobs, evening):
    message = deferred_by_quiet_hours(run_jobs)
    assert patch_settings(client, {"quiet_hours_marketing": "off"}).status_code == 200
    assert patch_settings(client, {"quiet_hours_marketing": None}).status_code == 200
    evening.shift(timedelta(seconds=10))
    run_jobs()
    again = Message.get_by_id(message.id)
    assert (again.state, again.reason) == (State.DEFERRED, Reason.QUIET_HOURS)


def test_a_settings_change_reaches_a_drain_already_running(make_app, settings, evening):
    """A released message must not be decided by the old settings again: a running drain
    asks for the sender (the settings in force) before every batch."""
    from bot.core import runtime

    make_app(settings.replace(send_batch_size=1))
    first = marketing_message(customer_phone="+919812345671", key="a")
    second = marketing_message(customer_phone="+919812345672", key="b")
    svc, calls = services(), []

    def make_sender():
        calls.append(1)
        if len(calls) == 2:  # an admin turns quiet hours off while the drain runs
            runtime.save_overrides({"quiet_hours_marketing": "off"}, "admin")
            svc.refresh()
        return svc.sender()

    dispatch.drain(make_sender, svc.queues, "campaigns", budget_seconds=60)
    assert Message.get_by_id(first.id).reason == Reason.QUIET_HOURS
    assert Message.get_by_id(second.id).state in SENT
