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


def init_app(app: Flask) -> None:
    for command in (
        migrate_command,
        sweep_command,
        redact_command,
        retry_message_command,
        sandbox_outbox_command,
        hash_password_command,
    ):
        app.cli.add_command(command)
