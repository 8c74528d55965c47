"""Flask CLI commands (`flask --app wsgi <command>`), next to the code they serve."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import Flask
from playhouse.migrations import Runner

from bot.extensions import services
from bot.models import db, utcnow

MIGRATIONS_DIR = str(Path(__file__).resolve().parent.parent / "migrations")


def migrate_database() -> list[str]:
    """Apply every pending migration; the names applied."""
    with db.connection_context():
        return Runner(db.obj, MIGRATIONS_DIR).up()


@click.command("migrate")
def migrate_command() -> None:
    """Apply pending schema migrations (the Procfile's release phase)."""
    applied = migrate_database()
    click.echo(f"applied: {', '.join(applied)}" if applied else "schema is up to date")


@click.command("sweep")
def sweep_command() -> None:
    """Re-enqueue stranded messages, apply stray receipts and drain the spool, once."""
    from jobs.sweep import sweep_once

    click.echo(json.dumps(sweep_once(services(), utcnow())))


@click.command("redact")
def redact_command() -> None:
    """Blank message texts and payloads older than RETENTION_DAYS now (the worker does
    it hourly)."""
    from bot.privacy import redact_old_messages

    with db.connection_context():
        redacted = redact_old_messages(utcnow(), services().settings.retention_days)
    click.echo(f"redacted {redacted} rows")


@click.command("rollup")
@click.option("--days", default=8, show_default=True, type=click.IntRange(1, 3660))
def rollup_command(days: int) -> None:
    """Recompute the analytics rollups of today and the days before it (the worker
    does the last 8 every ten minutes)."""
    from bot.analytics import rollup_recent

    with db.connection_context():
        written = rollup_recent(utcnow(), days)
    click.echo(f"wrote {written} rollup rows for {days} days")


@click.command("retry-message")
@click.argument("message_id", type=int)
def retry_message_command(message_id: int) -> None:
    """Send a dead-lettered (failed) message again."""
    from bot.sending import retry_failed_message

    with db.connection_context():
        ok = retry_failed_message(message_id, services().queues, utcnow())
    click.echo("queued again" if ok else "not a failed message; nothing done")


@click.command("sandbox-outbox")
@click.option("--limit", default=20, show_default=True)
def sandbox_outbox_command(limit: int) -> None:
    """Show what the sandbox provider would have sent, newest first."""
    from bot.providers.sandbox import recorded

    for item in recorded(services().redis, limit):
        click.echo(json.dumps(item, ensure_ascii=False))


@click.command("hash-password")
@click.password_option()
def hash_password_command(password: str) -> None:
    """Print the ADMIN_PASSWORD_HASH for a password."""
    from werkzeug.security import generate_password_hash

    click.echo(generate_password_hash(password))


@click.command("test-alert")
def test_alert_command() -> None:
    """Send a test alert through every configured alert channel."""
    from bot.alert_channels import configured_channels, send_everywhere
    from bot.alerts import Notice

    svc = services()
    channels = configured_channels(svc.settings, svc.queues)
    if not channels:
        raise click.ClickException(
            "no alert channel configured (ALERT_SLACK_WEBHOOK_URL, SMTP_URL, "
            "ALERT_WHATSAPP_NUMBERS)"
        )
    now = utcnow()
    text = f"a test alert from Dakiya at {now:%Y-%m-%d %H:%M} UTC; alerts reach you here"
    with db.connection_context():
        results = send_everywhere(channels, Notice("test", "test", "info", text, now))
    for name, error in results.items():
        click.echo(f"{name}: {'sent' if error is None else f'FAILED: {error}'}")
    if any(results.values()):
        raise SystemExit(1)


def init_app(app: Flask) -> None:
    app.cli.add_command(users)
    for command in (
        migrate_command,
        sweep_command,
        redact_command,
        rollup_command,
        retry_message_command,
        sandbox_outbox_command,
        hash_password_command,
        test_alert_command,
    ):
        app.cli.add_command(command)


users = click.Group("users", help="Admin API users (passwords are stored hashed).")


@users.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(["admin", "viewer"]), default="viewer", show_default=True)
@click.password_option()
def create_user_command(username: str, role: str, password: str) -> None:
    """Create a user, or set an existing user's role and password (rotation)."""
    from werkzeug.security import generate_password_hash

    from bot.models import AdminUser

    with db.connection_context():
        fields = {
            "password_hash": generate_password_hash(password),
            "role": role,
            "disabled": False,
        }
        user, created = AdminUser.get_or_create(username=username, defaults=fields)
        if not created:
            AdminUser.update(updated_at=utcnow(), **fields).where(AdminUser.id == user.id).execute()
    click.echo(f"{'created' if created else 'updated'} {username} ({role})")


@users.command("disable")
@click.argument("username")
def disable_user_command(username: str) -> None:
    """Stop a user from logging in."""
    from bot.models import AdminUser

    with db.connection_context():
        done = (
            AdminUser.update(disabled=True, updated_at=utcnow())
            .where(AdminUser.username == username)
            .execute()
        )
    click.echo("disabled" if done else f"no user {username}")


@users.command("list")
def list_users_command() -> None:
    """List the database's users (ADMIN_USERS from the environment are not listed)."""
    from bot.models import AdminUser

    with db.connection_context():
        for user in AdminUser.select().order_by(AdminUser.username):
            click.echo(f"{user.username}\t{user.role}\t{'disabled' if user.disabled else 'active'}")
