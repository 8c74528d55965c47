"""The periodic alert check (every minute, from the worker's cron)."""

from __future__ import annotations

from bot.alert_channels import configured_channels, send_everywhere
from bot.alerts import LOCK_KEY, Notice, check_once
from bot.config_rules import alert_rules_from_settings
from bot.extensions import services
from bot.models import db, utcnow

INTERVAL_SECONDS = 60


def check_alerts() -> list[dict]:
    """RQ entry point: evaluate the alert rules and tell the admins what changed."""
    svc = services()
    # One check at a time across all workers; a crashed checker's lock simply expires.
    if not svc.redis.set(LOCK_KEY, "1", nx=True, ex=INTERVAL_SECONDS - 5):
        return []
    try:
        with db.connection_context():
            settings = svc.current_settings()
            notices = check_once(
                svc.redis, svc.queues, alert_rules_from_settings(settings), utcnow()
            )
            channels = configured_channels(settings, svc.queues)
            return [deliver(channels, notice) for notice in notices]
    finally:
        svc.redis.delete(LOCK_KEY)


def deliver(channels, notice: Notice) -> dict:
    return {"alert": notice.dedupe_id, "channels": send_everywhere(channels, notice)}
