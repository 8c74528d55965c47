"""Benchmark: the whole pipeline against issue 8's targets, on this machine.

`python -m bench.pipeline [--db sqlite|postgres] [--campaign 100000] [--timeout 900]`
starts a private redis-server, a database (SQLite in a temp dir, or a throw-away
PostgreSQL cluster), the migrations, the fast fake provider (tests/fakes/provider_server.py,
a subprocess, `--latency` s per send), gunicorn and the workers, all on 127.0.0.1, and
measures in turn (docs/BENCHMARKS.md):

1. ingest alone: signed order events posted by aiohttp generator processes, no worker
   running: accepted events/s and request latency; then the backlog drained;
2. the order path: the same with workers running: sends/s, event posted -> accepted;
3. a campaign of N pre-made message rows drained by the send path: sends/s at the fake,
   steady rate vs SEND_RATE_PER_SECOND, busiest 1-s window, duplicates, worker RSS;
4. status webhooks (sent, delivered, read) for sent messages: receipts applied/s;
5. combined: a campaign at `--combined-rate` whose receipts the fake posts back one per
   POST, with STOPs from its recipients mid-run (bench/combined.py);
6. the naive path (one `send_message` job per message, forking workers) on a smaller N,
   and the ratio new/naive.

Prints a table (with the targets met or missed) and writes bench-results-pipeline.json.
Asserts nothing; everything started is stopped, also at the global `--timeout`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench import combined, phases
from bench.measure import FakeLog
from bench.report import table
from bench.stack import Deadline, start_stack, start_workers

PHASES = ("ingest", "orders", "campaign", "statuses", "combined", "naive")


def measure(args, stack: ExitStack, deadline: float) -> dict:
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-pipeline-")))
    os.chmod(workdir, 0o755)
    stk = start_stack(args, stack, workdir, deadline)
    fake_log = FakeLog(stk.fake)
    r: dict = {
        **{k: getattr(args, k) for k in ("db", "workers", "web_workers", "web_threads")},
        **{k: getattr(args, k) for k in ("latency", "rate", "events")},
        "campaign_messages": args.campaign,
        "naive_messages": args.naive,
        "commit": git_commit(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "errors": {},
    }
    run = [p for p in PHASES if p not in args.skip]
    sends: list = []
    try:
        backlog: set[int] = set()
        if "ingest" in run:
            r["ingest"] = phases.ingest_alone(stk, args, deadline)
            backlog = set(r["ingest"].pop("_posted_at"))
        start_workers(stk, stack, args.workers)
        time.sleep(2.0)  # workers register and preload before anything is timed
        if backlog:
            r["backlog"] = phases.drain_backlog(stk, fake_log, backlog, deadline)
        if "orders" in run:
            r["orders"] = phases.order_path(stk, args, fake_log, deadline)
        if "campaign" in run:
            r["campaign"] = phases.campaign(stk, args, fake_log, deadline)
            sends = r["campaign"].pop("_sends")
        if "statuses" in run and sends:
            r["statuses"] = phases.status_webhooks(stk, args, sends, deadline)
        if "combined" in run:
            helpers = (phases.cpu_now, phases.cpu_during)
            r["combined"] = combined.combined(
                stk, args, fake_log, deadline, phases.seed, phases.trigger_drain, helpers
            )
        if "naive" in run:
            r["naive"] = phases.naive(stk, args, fake_log, stack, deadline)
    except Deadline as exc:
        r["errors"]["run"] = str(exc)
    new = r.get("campaign", {}).get("sends_per_s")
    old = r.get("naive", {}).get("sends_per_s")
    r["ratio"] = round(new / old, 1) if new and old else None
    r["log_errors"] = phases.log_errors(workdir)
    return r


def git_commit() -> str:
    """The commit measured, marked "+dirty" when the tree has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--db", choices=("sqlite", "postgres"), default="sqlite")
    add("--events", type=int, default=5000, help="order events per ingest phase")
    add("--concurrency", type=int, default=16, help="requests in flight, all generators")
    add("--gen-procs", type=int, default=2, help="load generator processes")
    add("--workers", type=int, default=2, help="send-path worker processes")
    add("--web-workers", type=int, default=2, help="gunicorn workers (WEB_CONCURRENCY)")
    add("--web-threads", type=int, help="requests at work per gunicorn worker (WEB_THREADS)")
    add("--latency", type=float, default=0.2, help="fake provider seconds per send")
    add("--errors", default="", help="fake provider faults, e.g. 429=0.01,500=0.01")
    add("--rate", type=int, default=1000, help="SEND_RATE_PER_SECOND")
    add("--campaign", type=int, default=100_000, help="campaign messages (send path)")
    add("--category", choices=("utility", "marketing"), default="utility")
    add("--campaign-timeout", type=float, default=600.0, help="seconds for the send phase")
    add("--steady-skip", type=float, default=5.0, help="ramp-up left out of the steady rate")
    add("--steady-seconds", type=float, default=30.0, help="steady window for rate accuracy")
    add("--status-messages", type=int, default=10_000, help="messages given 3 receipts each")
    add("--status-batch", type=int, default=1, help="statuses per webhook POST (Meta: 1)")
    add("--combined", type=int, default=6000, help="campaign messages, receipts posted back")
    add("--combined-rate", type=int, default=300, help="send rate of the combined phase")
    add("--stops", type=int, default=20, help="STOPs from recipients in the combined phase")
    add("--naive", type=int, default=600, help="messages through the naive path")
    add("--naive-workers", type=int, default=2, help="forking workers for the naive path")
    add("--naive-timeout", type=float, default=240.0, help="seconds for the naive phase")
    add("--skip", default="", help=f"comma-separated phases to leave out: {','.join(PHASES)}")
    add("--profile", default="", help=f"phases to sample with py-spy: {','.join(PHASES)}")
    add("--profile-seconds", type=float, default=20.0, help="py-spy record duration")
    add("--profile-dir", default="bench-profiles", help="where py-spy's stacks go")
    add("--profile-cpu", action="store_true", help="sample CPU only (no idle stacks)")
    add("--env", action="append", default=[], help="extra KEY=VALUE for every app process")
    add("--timeout", type=float, default=1200.0, help="global limit, seconds")
    add("--out", default="bench-results-pipeline.json")
    args = parser.parse_args(argv)
    args.skip = set(filter(None, args.skip.split(",")))
    args.profile = set(filter(None, args.profile.split(",")))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    deadline = time.monotonic() + args.timeout
    with ExitStack() as stack:
        try:
            results = measure(args, stack, deadline)
        except Deadline as exc:
            print(f"bench.pipeline: {exc}", file=sys.stderr)
            return 1
    print(table(results))
    for name, lines in results["log_errors"].items():
        print(f"  errors in {name}: {lines}")
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"results written to {args.out}")
    return 0  # it measures; a missed target is reported, not failed


if __name__ == "__main__":
    sys.exit(main())
