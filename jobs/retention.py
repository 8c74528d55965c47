"""Retention: message texts and payloads older than RETENTION_DAYS are blanked, hourly."""

from __future__ import annotations

import logging

import click

from bot.core.models import db, utcnow
from bot.extensions import services
from bot.policy.privacy import redact_old_messages

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 3600


def redact_expired() -> int:
    """RQ entry point (hourly, from the worker's cron): how many rows were redacted."""
    with db.connection_context():
        redacted = redact_old_messages(utcnow(), services().settings.retention_days)
    if redacted:
        log.info("retention: redacted %d rows", redacted)
    return redacted


@click.command("redact")
def redact_command() -> None:
    """Blank message texts and payloads older than RETENTION_DAYS now (the worker does
    it hourly)."""
    with db.connection_context():
        redacted = redact_old_messages(utcnow(), services().settings.retention_days)
    click.echo(f"redacted {redacted} rows")
