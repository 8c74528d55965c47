"""CLI commands: migrations (the release phase), the sweep, dead-letter retry, the sandbox's
outbox and admin users; every command the docs name is there."""

from __future__ import annotations

import json
import re
from pathlib import Path

from werkzeug.security import check_password_hash

from bot.core.models import AdminUser, Message, Reason, State

ROOT = Path(__file__).resolve().parent.parent


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


def test_every_command_the_docs_name_is_registered(app):
    documented = {
        match.group(1)
        for doc in ("README.md", "Procfile", "Makefile", "scripts/dev.py")
        for match in re.finditer(r"flask --app wsgi ([a-z-]+)", (ROOT / doc).read_text())
    }
    assert documented >= {"migrate", "users", "hash-password", "sandbox-outbox", "test-alert"}
    assert documented <= set(app.cli.list_commands(None))


def test_sandbox_outbox_shows_what_the_sandbox_sent_newest_first(runner, run_jobs):
    from tests.factories import queued_message

    first = queued_message(event_id="e1", order_id="O1", phone="+919812345601")
    run_jobs()
    second = queued_message(event_id="e2", order_id="O2", phone="+919812345602")
    run_jobs()
    lines = runner.invoke(args=["sandbox-outbox"]).output.splitlines()
    assert [json.loads(line)["to"] for line in lines] == ["+919812345602", "+919812345601"]
    [newest] = runner.invoke(args=["sandbox-outbox", "--limit", "1"]).output.splitlines()
    assert json.loads(newest)["callback_data"] == f"dakiya:{second.id}" != f"dakiya:{first.id}"


def test_hash_password_prints_a_hash_of_the_password(runner):
    result = runner.invoke(args=["hash-password"], input="s3cret-pass\ns3cret-pass\n")
    assert result.exit_code == 0, result.output
    assert check_password_hash(result.output.splitlines()[-1], "s3cret-pass")


def test_users_are_created_rotated_listed_and_disabled(runner, app):
    created = runner.invoke(
        args=["users", "create", "asha", "--role", "admin"], input="pw-1\npw-1\n"
    )
    assert created.output.endswith("created asha (admin)\n")
    rotated = runner.invoke(args=["users", "create", "asha"], input="pw-2\npw-2\n")
    assert rotated.output.endswith("updated asha (viewer)\n")
    assert check_password_hash(AdminUser.get(username="asha").password_hash, "pw-2")
    assert runner.invoke(args=["users", "disable", "asha"]).output == "disabled\n"
    assert runner.invoke(args=["users", "disable", "ravi"]).output == "no user ravi\n"
    listed = runner.invoke(args=["users", "list"]).output.splitlines()
    assert "asha\tviewer\tdisabled\tdatabase" in listed


def test_users_list_names_the_environments_users_and_each_users_source(runner, app):
    runner.invoke(args=["users", "create", "meena"], input="pw-1\npw-1\n")
    runner.invoke(args=["users", "create", "admin"], input="pw-1\npw-1\n")  # ADMIN_USERS has it
    assert runner.invoke(args=["users", "list"]).output.splitlines() == [
        "admin\tadmin\tactive\tADMIN_USERS",
        "admin\tviewer\tshadowed\tdatabase",  # the environment's admin is the one who logs in
        "meena\tviewer\tactive\tdatabase",
        "viewer\tviewer\tactive\tADMIN_USERS",
    ]


def test_hash_password_help_names_the_setting_the_hash_goes_into(runner):
    help_text = runner.invoke(args=["hash-password", "--help"]).output
    assert "ADMIN_USERS" in help_text and "ADMIN_PASSWORD_HASH" not in help_text
