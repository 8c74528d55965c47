"""Figures from stamps: percentiles, rates over windows, what the fake provider saw, and
the RSS and CPU of the processes under test."""

from __future__ import annotations

import bisect
import sqlite3
import threading
import time
from dataclasses import dataclass, field

import psutil

from bench.ratelimit import percentile_ms
from tests.fakes.provider_server import RemoteFake, Send


def latency_summary(values: list[float]) -> dict:
    """p50/p99/max of seconds, in milliseconds."""
    return {
        "p50": round(percentile_ms(values, 0.5), 1),
        "p99": round(percentile_ms(values, 0.99), 1),
        "max": round(percentile_ms(values, 1.0), 1),
    }


def busiest_window(stamps: list[float], width: float = 1.0) -> tuple[int, float]:
    """The most stamps in any half-open window [t, t + width), and its start t."""
    ordered = sorted(stamps)
    best, at = 0, ordered[0] if ordered else 0.0
    for i, start in enumerate(ordered):
        inside = bisect.bisect_left(ordered, start + width, lo=i) - i
        if inside > best:
            best, at = inside, start
    return best, at


def per_second(stamps: list[float], start: float) -> list[int]:
    """How many stamps fall in each whole second after `start`."""
    counts: list[int] = []
    for stamp in stamps:
        second = int(stamp - start)
        counts.extend([0] * (second + 1 - len(counts)))
        counts[second] += 1
    return counts


def rate_between(stamps: list[float], start: float, end: float) -> float:
    ordered = sorted(stamps)
    inside = bisect.bisect_left(ordered, end) - bisect.bisect_left(ordered, start)
    return inside / (end - start) if end > start else 0.0


def steady_rate(stamps: list[float], skip: float, seconds: float) -> dict:
    """Rate over `seconds` starting `skip` s after the first stamp (the ramp-up left out);
    shorter when the run was shorter."""
    if len(stamps) < 2:
        return {"rate": 0.0, "start_s": 0.0, "seconds": 0.0}
    first, last = min(stamps), max(stamps)
    start = first + min(skip, (last - first) / 4)
    end = min(start + seconds, last)
    return {
        "rate": round(rate_between(stamps, start, end), 1),
        "start_s": round(start - first, 1),
        "seconds": round(end - start, 1),
    }


@dataclass
class FakeLog:
    """The fake's request log, fetched incrementally; first accepted send per message."""

    fake: RemoteFake
    since: int = 0
    accepted: dict[int, Send] = field(default_factory=dict)
    requests: int = 0
    duplicates: int = 0  # accepted sends beyond the first for a message
    errors: int = 0

    def poll(self) -> None:
        for send in self.fake.sends(self.since):
            self.since += 1
            self.requests += 1
            if not send.accepted:
                self.errors += 1
            elif send.message_id is None:
                continue
            elif send.message_id in self.accepted:
                self.duplicates += 1
            else:
                self.accepted[send.message_id] = send

    def wait_for(self, ids: set[int], deadline: float, interval: float = 0.5) -> bool:
        """Poll until every id in `ids` was accepted; False when the deadline passed."""
        while True:
            self.poll()
            if ids.issubset(self.accepted):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(interval)


def process_tree(pid: int) -> list[psutil.Process]:
    try:
        leader = psutil.Process(pid)
        return [leader, *leader.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(pids: list[int]) -> float:
    """CPU of these processes and their descendants, reaped ones (forked jobs) included."""
    total = 0.0
    for pid in pids:
        for proc in process_tree(pid):
            try:
                t = proc.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
            except psutil.NoSuchProcess:
                pass
    return total


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores) since boot."""
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)


class RssSampler(threading.Thread):
    """Samples each worker process's RSS (its own, not its children's) every `interval`."""

    def __init__(self, pids: list[int], interval: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.pids, self.interval = pids, interval
        self.samples: list[tuple[float, dict[int, int]]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            sample = {}
            for pid in self.pids:
                try:
                    sample[pid] = psutil.Process(pid).memory_info().rss
                except psutil.NoSuchProcess:
                    pass
            self.samples.append((time.time(), sample))
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def summary(self, after: float = 0.0) -> dict:
        """first/last/max MB per process from the first sample at or after `after`."""
        per_pid: dict[int, list[int]] = {}
        for at, sample in self.samples:
            if at >= after:
                for pid, rss in sample.items():
                    per_pid.setdefault(pid, []).append(rss)
        mb = 1024 * 1024
        out = {}
        for pid, values in per_pid.items():
            first, last = values[0], values[-1]
            out[str(pid)] = {
                "samples": len(values),
                "first_mb": round(first / mb, 1),
                "last_mb": round(last / mb, 1),
                "max_mb": round(max(values) / mb, 1),
                "drift_pct": round(100 * (last - first) / first, 1) if first else 0.0,
            }
        return out


def count_rows(database_url: str, sql: str) -> int:
    """One integer from the database under test, through a plain driver connection."""
    return run_sql(database_url, sql)[0]


def execute_sql(database_url: str, sql: str) -> None:
    """One statement on the database under test, committed (a plain driver connection)."""
    run_sql(database_url, sql)


def run_sql(database_url: str, sql: str) -> tuple | None:
    """Run `sql` on its own connection, committed; its first row, if it returns one."""
    if database_url.startswith("sqlite:///"):
        conn = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=30)
    else:
        import psycopg2

        conn = psycopg2.connect(database_url)
    try:
        cur = conn.cursor()
        cur.execute(sql)
        row = cur.fetchone() if cur.description else None
        conn.commit()
        return row
    finally:
        conn.close()
