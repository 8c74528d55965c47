"""Deduplicated job triggers: "make sure one job of this kind is pending".

A burst of webhooks must cost one drain job, not one job each. A trigger is a Redis key
set with NX next to the enqueue: whoever sets it enqueues the job; the job clears the
key first thing, so work handed over after that point triggers a fresh job and work
handed over before it is picked up by the running one. A key whose job was lost (Redis
flushed, job deleted) expires after TTL_SECONDS; the sweeper triggers with `force`.

Its counterpart for periodic jobs, `single_run`: "make sure at most one job of this kind
runs at a time" (the sweep, the alert check, the analytics rollup).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis
from redis.client import Pipeline
from redis.exceptions import LockNotOwnedError
from rq import Queue

#: A trigger older than this is taken as lost and no longer blocks new ones.
TTL_SECONDS = 60


def ensure_pending(
    queue: Queue,
    key: str,
    func: str,
    *args,
    force: bool = False,
    also: Callable[[Pipeline], object] | None = None,
) -> bool:
    """Enqueue `func(*args)` on `queue` unless the trigger `key` says one is pending
    (`force`: enqueue anyway). `also` adds commands to the same round trip (e.g. pushing
    the work the job will pick up). True if this call enqueued the job."""
    pipe = queue.connection.pipeline(transaction=False)
    if also is not None:
        also(pipe)
    pipe.set(key, "1", nx=True, ex=TTL_SECONDS)
    if not pipe.execute()[-1] and not force:
        return False
    queue.enqueue(func, *args, result_ttl=0, failure_ttl=3600)
    return True


def renew(conn: redis.Redis, key: str) -> None:
    """A job that keeps its trigger while it runs (a lingering drain) hands on: the key
    lives another TTL_SECONDS, so work handed over meanwhile still kicks no job."""
    conn.set(key, "1", ex=TTL_SECONDS)


def clear(conn: redis.Redis, key: str) -> None:
    """The job has started: from now on new work needs a new trigger (best effort: the
    key expires anyway)."""
    try:
        conn.delete(key)
    except redis.RedisError:
        pass


@contextmanager
def single_run(conn: redis.Redis, key: str, ttl_seconds: float) -> Iterator[bool]:
    """Hold the lock `key` while the block runs, so one run at a time goes ahead across
    all workers; yields False (holding nothing) when another run holds it.

    Non-blocking: a skipped run is simply the next one's to do. The lock expires after
    `ttl_seconds`, so a crashed run never blocks the ones after it; a run that outlasts
    it releases only its own lock, never the one a later run took meanwhile (redis-py's
    `Lock`: a token, and compare-and-delete).
    """
    lock = conn.lock(key, timeout=ttl_seconds, blocking=False)
    if not lock.acquire():
        yield False
        return
    try:
        yield True
    finally:
        try:
            lock.release()
        except LockNotOwnedError:
            pass  # expired during the run: whoever holds the key now keeps it
