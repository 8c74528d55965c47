"""Benchmark: does the shared send-rate limiter hold its rate with several workers?

`python -m bench.ratelimit [--workers 4] [--seconds 10] [--rate 80]` starts a private
Redis (or uses REDIS_URL, which must be a scratch Redis: the benchmark spends the same
send budget as live workers), lets each worker process take slots from one
SendRateLimiter as fast as it can, and reports the achieved rate and the busiest
1-second window. Exits 1 when the rate is off by more than 5% or any 1-second window
certainly holds more grants than the rate, so CI can run it; the test suite never does.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import queue
import sys
import time
from bisect import bisect_right
from contextlib import nullcontext
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import redis

from bot.delivery.ratelimit import SendRateLimiter
from tests.fakes.redis_server import private_redis, redis_server_binary

RESULTS_FILE = Path("bench-results-ratelimit.json")
MAX_DEVIATION_PCT = 5.0
REFUSED_PAUSE_SECONDS = 0.001  # keeps refused workers from crowding out the others
START_DELAY_SECONDS = 0.2  # every worker is already waiting when the clock starts


@dataclass
class WorkerResult:
    # (called, returned): time.monotonic() around each granted try_acquire(). The
    # limiter stamps the slot with its own clock somewhere in between.
    granted: list[tuple[float, float]]
    attempts: int


def take_slots(redis_url: str, rate: int, start_at: float, stop_at: float) -> WorkerResult:
    """One worker: call try_acquire() in a tight loop from start_at until stop_at."""
    limiter = SendRateLimiter(redis.Redis.from_url(redis_url), rate)
    granted: list[tuple[float, float]] = []
    attempts = 0
    time.sleep(max(0.0, start_at - time.monotonic()))
    while (called := time.monotonic()) < stop_at:
        attempts += 1
        if limiter.try_acquire():
            granted.append((called, time.monotonic()))
        else:
            time.sleep(REFUSED_PAUSE_SECONDS)
    return WorkerResult(granted, attempts)


def _worker_main(redis_url, rate, seconds, ready, go, start_at, results) -> None:
    ready.release()
    go.wait()
    results.put(take_slots(redis_url, rate, start_at.value, start_at.value + seconds))


def run_workers(redis_url: str, workers: int, rate: int, seconds: float) -> list[WorkerResult]:
    """Run `workers` processes against one limiter, all starting at the same instant."""
    ctx = mp.get_context("spawn")  # not fork: safe whatever threads the caller runs
    ready, go = ctx.Semaphore(0), ctx.Event()
    start_at, results = ctx.Value("d", 0.0), ctx.Queue()
    args = (redis_url, rate, seconds, ready, go, start_at, results)
    procs = [ctx.Process(target=_worker_main, args=args, daemon=True) for _ in range(workers)]
    for proc in procs:
        proc.start()
    try:
        for _ in procs:
            if not ready.acquire(timeout=60):
                raise RuntimeError("a worker process did not start within 60 s")
        start_at.value = time.monotonic() + START_DELAY_SECONDS
        go.set()
        deadline = start_at.value + seconds + 60
        collected: list[WorkerResult] = []
        while len(collected) < workers:
            try:
                collected.append(results.get(timeout=1))
            except queue.Empty:
                if time.monotonic() > deadline or any(p.exitcode for p in procs):
                    raise RuntimeError("a worker process failed or hung") from None
        for proc in procs:
            proc.join(10)
        return collected
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()


def busiest_window(stamps: list[float], width: float = 1.0) -> int:
    """The most stamps in any closed interval [t, t + width], computed exactly."""
    ordered = sorted(stamps)
    return max((bisect_right(ordered, t + width) - i for i, t in enumerate(ordered)), default=0)


def busiest_window_for_certain(spans: list[tuple[float, float]], width: float = 1.0) -> int:
    """The most grants whose whole (called, returned) span fits in one [t, t + width].

    Those grants were certainly decided within one window, whatever the scheduler did
    to the caller around the call, so a count above the rate is a real over-grant.
    """
    ordered = sorted(spans)
    starts = [called for called, _ in ordered]
    best = 0
    for i, (t, _) in enumerate(ordered):
        end = bisect_right(starts, t + width)
        best = max(best, sum(1 for _, returned in ordered[i:end] if returned <= t + width))
    return best


def percentile_ms(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000 if values else 0.0


def summarise(results: list[WorkerResult], workers: int, rate: int, seconds: float) -> dict:
    spans = [span for r in results for span in r.granted]
    granted = len(spans)
    achieved = granted / seconds
    deviation = (achieved - rate) / rate * 100
    certain = busiest_window_for_certain(spans)
    latencies = [returned - called for called, returned in spans]
    attempts = sum(r.attempts for r in results)
    return {
        "workers": workers,
        "seconds": seconds,
        "rate": rate,
        "granted": granted,
        "granted_per_worker": [len(r.granted) for r in results],
        "achieved_rate": round(achieved, 3),
        "deviation_pct": round(deviation, 3),
        "max_in_1s_window": certain,
        "max_in_1s_window_stamped_at_call": busiest_window([c for c, _ in spans]),
        "max_in_1s_window_stamped_at_return": busiest_window([r for _, r in spans]),
        "granted_call_ms": {
            "p50": round(percentile_ms(latencies, 0.5), 3),
            "p99": round(percentile_ms(latencies, 0.99), 3),
            "max": round(percentile_ms(latencies, 1.0), 3),
        },
        "attempts": attempts,
        "attempts_per_second": round(attempts / seconds, 1),
        "ok": abs(deviation) <= MAX_DEVIATION_PCT and certain <= rate,
    }


def report(s: dict) -> str:
    call = s["granted_call_ms"]
    rows = [
        ("workers × seconds", f"{s['workers']} × {s['seconds']:g}"),
        ("configured rate", f"{s['rate']}/s"),
        ("granted", f"{s['granted']}  (per worker {s['granted_per_worker']})"),
        ("achieved rate", f"{s['achieved_rate']:.2f}/s"),
        ("deviation", f"{s['deviation_pct']:+.2f}%  (limit ±{MAX_DEVIATION_PCT:g}%)"),
        ("max in any 1-s window", f"{s['max_in_1s_window']}  (limit {s['rate']})"),
        ("  stamped at call", s["max_in_1s_window_stamped_at_call"]),
        ("  stamped at return", s["max_in_1s_window_stamped_at_return"]),
        ("granted call ms", f"p50 {call['p50']}  p99 {call['p99']}  max {call['max']}"),
        ("attempts", f"{s['attempts']}  ({s['attempts_per_second']:.0f}/s)"),
        ("result", "PASS" if s["ok"] else "FAIL"),
    ]
    return "\n".join(f"{name:<24}{value}" for name, value in rows)


def emit(text: str) -> None:
    print(text, flush=True)  # a benchmark reports to the person running it


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=80)
    args = parser.parse_args(argv)

    given = os.environ.get("REDIS_URL")
    with nullcontext(given) if given else private_redis() as redis_url:
        results = run_workers(redis_url, args.workers, args.rate, args.seconds)

    summary = summarise(results, args.workers, args.rate, args.seconds)
    summary["environment"] = {
        "redis": "REDIS_URL" if given else redis_server_binary(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "limits": version("limits"),
    }
    emit(report(summary))
    RESULTS_FILE.write_text(json.dumps(summary, indent=2) + "\n")
    emit(f"wrote {RESULTS_FILE}")
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
