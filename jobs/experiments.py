"""The periodic A/B roll-out check (every ten minutes, from the worker's cron)."""

from __future__ import annotations

from bot.campaigns import experiments
from bot.core.models import db, utcnow

INTERVAL_SECONDS = 600


def check_rollouts() -> list[dict]:
    """RQ entry point: roll out each auto-roll-out experiment's significant winner."""
    with db.connection_context():
        return experiments.check_rollouts(utcnow())
