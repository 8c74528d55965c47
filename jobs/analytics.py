"""Analytics rollups: the last eight days' DailyStat rows recomputed every ten minutes
(replies and opt-outs up to seven days late still change a day's numbers)."""

from __future__ import annotations

import logging

import click

from bot.core.models import db, utcnow
from bot.core.triggers import single_run
from bot.extensions import services
from bot.observability.analytics import rollup_recent

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 600
TIMEOUT_SECONDS = 540  # a run must end before the next one starts
LOCK_KEY = "dakiya:analytics:lock"


def rollup() -> int:
    """RQ entry point (every ten minutes, from the worker's cron): the rows written."""
    # One rollup at a time across workers: two would race to replace the same day's rows.
    with single_run(services().redis, LOCK_KEY, TIMEOUT_SECONDS) as ours:
        if not ours:
            return 0
        with db.connection_context():
            written = rollup_recent(utcnow())
    log.info("analytics: %d rollup rows written", written)
    return written


@click.command("rollup")
@click.option("--days", default=8, show_default=True, type=click.IntRange(1, 3660))
def rollup_command(days: int) -> None:
    """Recompute the analytics rollups of today and the days before it (the worker
    does the last 8 every ten minutes)."""
    with db.connection_context():
        written = rollup_recent(utcnow(), days)
    click.echo(f"wrote {written} rollup rows for {days} days")
