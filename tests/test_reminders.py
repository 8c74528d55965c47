"""Reminders: a COD order nobody confirmed gets COD_REMINDER_TEMPLATE after
COD_REMINDER_MINUTES, unless a later event for the order settles it first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from bot.extensions import services
from bot.intake import take_order_event
from bot.models import EventKind, Message, Reason, State, utcnow
from bot.reminders import COD_REMINDER
from jobs.sweep import sweep_once
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
