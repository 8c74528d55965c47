"""CLI commands: migrations (the release phase), the sweep and dead-letter retry."""

from __future__ import annotations

from bot.models import Message, Reason, State


def test_migrate_is_idempotent(runner):
    assert "up to date" in runner.invoke(args=["migrate"]).output


def test_retry_message_requeues_only_failed_messages(runner, app):
    from tests.factories import queued_message

    message = queued_message()
    assert "nothing done" in runner.invoke(args=["retry-message", str(message.id)]).output
    Message.update(state=State.FAILED, reason=Reason.RETRIES_EXHAUSTED, attempts=6).execute()
    assert "queued again" in runner.invoke(args=["retry-message", str(message.id)]).output
    message = Message.get_by_id(message.id)
    assert (message.state, message.attempts) == (State.QUEUED, 0)


def test_sweep_command_reports_what_it_did(runner):
    assert '"messages_requeued": 0' in runner.invoke(args=["sweep"]).output
