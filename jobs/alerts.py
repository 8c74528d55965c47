"""The periodic alert check (every minute, from the worker's cron)."""

from __future__ import annotations

from bot.alert_channels import configured_channels, send_everywhere
from bot.alerts import LOCK_KEY, Notice, alert_rules_from_settings, check_once
from bot.extensions import services
from bot.models import db, utcnow
from bot.triggers import single_run

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
