"""Getting messages sent: triggers for the batch sender, and its drain loop.

Webhooks, campaigns and the sweeper do not enqueue one job per message; they *kick*:
ensure one `send_due` job is pending on the RQ queue. A kick is deduplicated with a
Redis key, so a burst of a thousand order events costs one job, not a thousand. The job
clears the key first thing, then claims due messages in batches (order updates before
campaigns) until none are left or its time budget is spent. Whenever it claims a full
batch it kicks again, so an idle worker joins in: throughput grows with the workers.

A message committed after the job cleared the key kicks a new job; one committed
before it is claimed by the running job. A lost trigger (Redis flushed, job deleted)
only delays: the sweeper kicks every SWEEP_INTERVAL_SECONDS regardless of the key.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import redis
from rq import Queue

from bot.core import triggers
from bot.core.models import utcnow
from bot.delivery.claims import claim_due, claimable_by

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from bot.delivery.sending import InFlight, Sender

SEND_DUE_JOB = "jobs.send.send_due"
KICK_KEY = "dakiya:send-due:{queue}"
SCHEDULED_KEY = "dakiya:send-due:{queue}:at:{second}"
#: Set when this process is asked to stop: a running drain finishes its batch and returns.
stop_requested = threading.Event()


def kick(queues: dict[str, Queue], queue: str, *, force: bool = False) -> bool:
    """Make sure a `send_due` job is pending on `queue`; True if this call enqueued it."""
    key = KICK_KEY.format(queue=queue)
    return triggers.ensure_pending(queues[queue], key, SEND_DUE_JOB, queue, force=force)


def kick_at(queues: dict[str, Queue], queue: str, at: datetime) -> None:
    """Have a `send_due` job run at `at` (rounded up to the second): at most one per
    second per queue, however many messages fall due then."""
    second = math.ceil(at.replace(tzinfo=UTC).timestamp())
    key = SCHEDULED_KEY.format(queue=queue, second=second)
    ttl = max(int(second - time.time()), 0) + triggers.TTL_SECONDS
    rq_queue = queues[queue]
    if rq_queue.connection.set(key, "1", nx=True, ex=ttl):
        when = datetime.fromtimestamp(second, UTC)
        rq_queue.enqueue_at(when, SEND_DUE_JOB, queue, result_ttl=0, failure_ttl=3600)


def drain(
    make_sender: Callable[[], Sender],
    queues: dict[str, Queue],
    queue: str,
    budget_seconds: float,
    step_aside: Callable[[], bool] | None = None,
) -> dict[str, int]:
    """Claim and send due messages batch after batch; what happened to them, by outcome.
    When `step_aside()` says work of a higher priority waits (a paced campaign keeps a
    worker for as long as its batches take), it hands over between batches: the worker
    serves that work first and a fresh job carries on.

    The trigger is cleared first thing, then the sender is made (`make_sender` may read
    the run-time settings). If the process dies in between, its claimed messages keep
    their leases and are taken again when those run out (sent ones are reconciled by
    their receipts).

    The sender is asked for again before every batch, so a run-time settings change
    reaches a running drain within runtime.REFRESH_SECONDS (`make_sender` rebuilds it
    only when the settings changed); a batch is recorded by the sender that started it."""
    triggers.clear(queues[queue].connection, KICK_KEY.format(queue=queue))
    stop_at = time.monotonic() + budget_seconds
    outcomes: Counter[str] = Counter()
    flight: tuple[Sender, InFlight] | None = None
    while True:
        sender = make_sender()
        # No more than one go at the send rate: a bigger batch would only be put back.
        size = min(sender.settings.send_batch_size, sender.limiter.current_rate())
        now = utcnow()
        batch = claim_due(now, size, sender.settings.send_lease_seconds, claimable_by(queue))
        if not batch:
            break
        out_of_time = time.monotonic() >= stop_at or stop_requested.is_set()
        out_of_time = out_of_time or (step_aside is not None and step_aside())
        if len(batch) == size or out_of_time:
            kick(queues, queue)  # more is waiting: let another worker (or our next job) help
        # Two batches overlap: this one is decided and sent while the last one's
        # provider calls are still in flight; then the last one is recorded.
        try:
            started = (sender, sender.start(batch, now))
        finally:  # the batch in flight is recorded whatever happens to the next one
            if flight is not None:
                outcomes.update(flight[0].finish(flight[1]))
        flight = started
        if out_of_time:
            break
    if flight is not None:
        outcomes.update(flight[0].finish(flight[1]))
    return dict(outcomes)


def enqueue_sends(queues: dict[str, Queue], messages: list[tuple[int, str]]) -> int:
    """Have the batch sender pick up these committed (message id, queue) rows: one
    deduplicated `send_due` trigger per queue, not a job per message. Returns how many
    messages were handed over.

    Called only after the rows are committed. If Redis is unreachable the messages stay
    `queued` in the database and the sweeper triggers the sender later: delayed, never lost.
    """
    try:
        for name in dict.fromkeys(queue for _, queue in messages):
            kick(queues, name)
    except redis.RedisError as exc:
        log.warning("enqueue failed (%s); the sweeper will send %d message(s)", exc, len(messages))
        return 0
    return len(messages)
