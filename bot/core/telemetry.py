"""Counters and latency histograms shared by every process, kept in Redis.

Web processes, RQ workers and the forked job processes they start all write here, and
`/metrics` reads it back, so the figures are whole whatever the number of processes or
machines (prometheus-client's own multiprocess mode only covers one machine). Writes
are best effort: a metric never fails a webhook or a send.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from bisect import bisect_left
from collections import Counter, defaultdict

import redis
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

log = logging.getLogger(__name__)

PREFIX = "dakiya:telemetry:"
#: Histogram bucket bounds in seconds, from a fast webhook to a long-deferred send.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)

COUNTERS = {
    "webhook_requests": ("Webhook requests by endpoint and HTTP status.", ("endpoint", "status")),
    "send_attempts": ("Provider calls by provider and outcome.", ("provider", "outcome")),
    "send_retries": ("Retries scheduled, by provider and error code.", ("provider", "code")),
    "rate_limiter_waits": ("Sends put back because the global send rate was spent.", ()),
    "sweep_phase_failures": ("Sweeper phases that failed, by phase.", ("phase",)),
    "intake_dropped": (
        "Deliveries acknowledged but not stored, by what, reason (erased) and source.",
        ("what", "reason", "source"),
    ),
}
HISTOGRAMS = {
    "webhook_seconds": ("Webhook handling time.", ("endpoint",)),
    "send_latency_seconds": (
        "From the message's creation (event received) to the provider's acceptance.",
        ("provider", "category"),
    ),
}


def _key(labels: dict) -> str:
    return json.dumps(labels, sort_keys=True)


def count(conn: redis.Redis, name: str, labels: dict | None = None, amount: int = 1) -> None:
    try:
        conn.hincrby(PREFIX + name, _key(labels or {}), amount)
    except redis.RedisError as exc:
        log.debug("telemetry %s not counted: %s", name, exc)


def observe(conn: redis.Redis, name: str, labels: dict, seconds: float) -> None:
    """Record one duration: its bucket, the running sum and the count."""
    observe_many(conn, name, labels, [seconds])


def observe_many(conn: redis.Redis, name: str, labels: dict, values: list[float]) -> None:
    """Record many durations of one series in one round trip (a batch of sends)."""
    field = _key(labels)
    buckets: dict[int, int] = {}
    for seconds in values:
        bucket = bisect_left(BUCKETS, seconds)
        buckets[bucket] = buckets.get(bucket, 0) + 1
    try:
        pipe = conn.pipeline(transaction=False)
        for bucket, amount in buckets.items():
            pipe.hincrby(f"{PREFIX}{name}:buckets", f"{field}|{bucket}", amount)
        pipe.hincrbyfloat(f"{PREFIX}{name}:sum", field, sum(values))
        pipe.execute()
    except redis.RedisError as exc:
        log.debug("telemetry %s not observed: %s", name, exc)


class Buffer:
    """Counts and durations kept in this process and written to Redis in one pipeline
    at most every `flush_seconds`, so a hot path (every webhook request) pays no Redis
    round trip per call (issue 19). A process that dies loses at most that much;
    `/metrics` flushes its own process's buffer before it reads."""

    def __init__(self, flush_seconds: float = 1.0) -> None:
        self.flush_seconds = flush_seconds
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()
        self._durations: defaultdict[tuple[str, str], list[float]] = defaultdict(list)
        self._flushed = time.monotonic()

    def count(self, conn: redis.Redis, name: str, labels: dict, amount: int = 1) -> None:
        with self._lock:
            self._counts[(name, _key(labels))] += amount
        self._maybe_flush(conn)

    def observe(self, conn: redis.Redis, name: str, labels: dict, seconds: float) -> None:
        with self._lock:
            self._durations[(name, _key(labels))].append(seconds)
        self._maybe_flush(conn)

    def discard(self) -> None:
        """Forget what is buffered (tests start each on an empty Redis)."""
        with self._lock:
            self._counts.clear()
            self._durations.clear()

    def _maybe_flush(self, conn: redis.Redis) -> None:
        if time.monotonic() - self._flushed >= self.flush_seconds:
            self.flush(conn)

    def flush(self, conn: redis.Redis) -> None:
        with self._lock:
            counts, self._counts = self._counts, Counter()
            durations, self._durations = self._durations, defaultdict(list)
            self._flushed = time.monotonic()
        if not counts and not durations:
            return
        try:
            pipe = conn.pipeline(transaction=False)
            for (name, field), amount in counts.items():
                pipe.hincrby(PREFIX + name, field, amount)
            for (name, field), values in durations.items():
                buckets = Counter(bisect_left(BUCKETS, seconds) for seconds in values)
                for bucket, amount in buckets.items():
                    pipe.hincrby(f"{PREFIX}{name}:buckets", f"{field}|{bucket}", amount)
                pipe.hincrbyfloat(f"{PREFIX}{name}:sum", field, sum(values))
            pipe.execute()
        except redis.RedisError as exc:
            log.debug("telemetry buffer not flushed: %s", exc)


#: This process's buffer for the webhook requests' counts and timings.
WEBHOOKS = Buffer()


def collect(conn: redis.Redis):
    """Prometheus metric families for everything recorded so far."""
    WEBHOOKS.flush(conn)
    for name, (help_text, label_names) in COUNTERS.items():
        family = CounterMetricFamily(f"dakiya_{name}", help_text, labels=label_names)
        for field, value in conn.hgetall(PREFIX + name).items():
            labels = json.loads(field)
            family.add_metric([labels.get(n, "") for n in label_names], int(value))
        yield family
    for name, (help_text, label_names) in HISTOGRAMS.items():
        family = HistogramMetricFamily(f"dakiya_{name}", help_text, labels=label_names)
        per_series: dict[str, list[int]] = {}
        for field, value in conn.hgetall(f"{PREFIX}{name}:buckets").items():
            series, _, index = field.decode().rpartition("|")
            per_series.setdefault(series, [0] * (len(BUCKETS) + 1))[int(index)] += int(value)
        sums = {k.decode(): float(v) for k, v in conn.hgetall(f"{PREFIX}{name}:sum").items()}
        for series, counts in per_series.items():
            labels = json.loads(series)
            cumulative, running = [], 0
            for bound, n in zip((*map(str, BUCKETS), "+Inf"), counts, strict=True):
                running += n
                cumulative.append((bound, running))
            family.add_metric(
                [labels.get(n, "") for n in label_names], cumulative, sums.get(series, 0.0)
            )
        yield family
