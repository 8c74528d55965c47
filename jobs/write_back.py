"""The COD write-back (bot/integrations/write_back.py), every INTERVAL_SECONDS from the
worker's cron, one run at a time across workers."""

from __future__ import annotations

import logging

from bot.core.models import db, utcnow
from bot.core.triggers import single_run
from bot.extensions import services
from bot.integrations.write_back import due, mark_unanswered, run_one

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 30
LOCK_KEY = "dakiya:write-back"
TIMEOUT_SECONDS = 300


def write_back_due() -> int:
    """RQ entry point: how many write-backs were made."""
    svc = services()
    with single_run(svc.redis, LOCK_KEY, TIMEOUT_SECONDS) as ours:
        if not ours:
            return 0
        with db.connection_context():
            now = utcnow()
            mark_unanswered(svc.settings, now)
            states = [run_one(item, svc.settings, svc.redis, now) for item in due(now)]
    made = states.count("done")
    if states:
        log.info("write-back: %d made, %d left for later or failed", made, len(states) - made)
    return made
