"""The periodic alert check (every minute, from the worker's cron)."""

from __future__ import annotations

import click

from bot.core.config_rules import alert_rules_from_settings
from bot.core.models import db, utcnow
from bot.core.triggers import single_run
from bot.extensions import services
from bot.observability.alert_channels import configured_channels, send_everywhere
from bot.observability.alerts import LOCK_KEY, Notice, check_once

INTERVAL_SECONDS = 60


def check_alerts() -> list[dict]:
    """RQ entry point: evaluate the alert rules and tell the admins what changed."""
    svc = services()
    # One check at a time across all workers: two would alert twice.
    with single_run(svc.redis, LOCK_KEY, INTERVAL_SECONDS - 5) as ours:
        if not ours:
            return []
        with db.connection_context():
            settings = svc.current_settings()
            notices = check_once(
                svc.redis, svc.queues, alert_rules_from_settings(settings), utcnow()
            )
            channels = configured_channels(settings, svc.queues)
            return [deliver(channels, notice) for notice in notices]


def deliver(channels, notice: Notice) -> dict:
    return {"alert": notice.dedupe_id, "channels": send_everywhere(channels, notice)}


@click.command("test-alert")
def test_alert_command() -> None:
    """Send a test alert through every configured alert channel."""
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
