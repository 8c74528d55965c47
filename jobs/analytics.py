"""Analytics rollups: the last eight days' DailyStat rows recomputed every ten minutes
(replies and opt-outs up to seven days late still change a day's numbers)."""

from __future__ import annotations

import logging

from bot.analytics import rollup_recent
from bot.extensions import services
from bot.models import db, utcnow

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 600
TIMEOUT_SECONDS = 540  # a run must end before the next one starts
LOCK_KEY = "dakiya:analytics:lock"


def rollup() -> int:
    """RQ entry point (every ten minutes, from the worker's cron): the rows written."""
    redis = services().redis
    # One rollup at a time across workers: two would race to replace the same day's rows.
    if not redis.set(LOCK_KEY, "1", nx=True, ex=TIMEOUT_SECONDS):
        return 0
    try:
        with db.connection_context():
            written = rollup_recent(utcnow())
    finally:
        redis.delete(LOCK_KEY)
    log.info("analytics: %d rollup rows written", written)
    return written
