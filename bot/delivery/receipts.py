"""Getting receipts applied: the hand-over to the batch applier, and its drain loop (the
twin of bot/delivery/dispatch.py for sends).

Webhooks store receipts (bot/delivery/statuses.py) and hand their ids over: pushed on a Redis
list, with at most one pending drain job however many webhooks arrive (a deduplicated
trigger, bot/core/triggers.py). The drain job clears the trigger first, then pops and applies
the ids a batch at a time until none are left or its time budget is spent; then it
kicks a fresh job to carry on. Ids lost with Redis stay unapplied rows: the sweeper
enqueues those itself (APPLY_JOB).
"""

from __future__ import annotations

import time

from rq import Queue

from bot.core import triggers
from bot.core.models import utcnow
from bot.delivery import statuses

APPLY_JOB = "jobs.statuses.apply_status_events"
DRAIN_JOB = "jobs.statuses.apply_pending_receipts"
#: Stored receipt ids waiting for the batch applier, and its deduplicated trigger.
PENDING_KEY = "dakiya:receipts:pending"
KICK_KEY = "dakiya:receipts:kick"


def hand_over(queues: dict[str, Queue], event_ids: list[int]) -> None:
    """Queue stored receipts for the batch applier: their ids on the list, and a drain
    job unless one is pending (one round trip when it is)."""
    triggers.ensure_pending(
        queues["statuses"],
        KICK_KEY,
        DRAIN_JOB,
        also=lambda pipe: pipe.rpush(PENDING_KEY, *event_ids),
    )


def kick(queues: dict[str, Queue], *, force: bool = False) -> None:
    """Make sure a drain job is pending (`force`: enqueue one even if a trigger is set)."""
    triggers.ensure_pending(queues["statuses"], KICK_KEY, DRAIN_JOB, force=force)


def drain(queues: dict[str, Queue], budget_seconds: float) -> int:
    """Apply the handed-over receipts, a batch at a time, until none are left or the
    budget is spent (then a fresh job carries on); how many messages changed state.

    The trigger is cleared first, so a receipt handed over from now on kicks a new job;
    one handed over before is popped by this one."""
    conn = queues["statuses"].connection
    triggers.clear(conn, KICK_KEY)
    stop_at = time.monotonic() + budget_seconds
    changed = 0
    while raw := conn.lpop(PENDING_KEY, statuses.BATCH_SIZE):
        changed += statuses.apply_status_events([int(i) for i in raw], utcnow())
        if time.monotonic() >= stop_at:
            kick(queues, force=True)
            break
    return changed
