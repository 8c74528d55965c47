"""Benchmark: how fast does the whole pipeline take order events and send messages?

`python -m bench.pipeline [--db sqlite|postgres] [--events 2000] [--workers 2]
[--latency 0.2] [--timeout 180]` measures the system as it is, on this machine; it
asserts no target. It starts a private redis-server, a database (SQLite in a temp dir,
or with `--db postgres` a throw-away PostgreSQL cluster like scripts/test.sh), runs the
migrations, starts a FakeWhatsApp (Meta API with `--latency` seconds per send) in this
process, gunicorn (2 workers, gunicorn.conf.py) and N `python -m jobs.worker`
processes, all on 127.0.0.1. Then:

1. ingest: E signed generic order events (distinct customers) posted from a pool of
   16 threads with keep-alive sessions: accepted events/s and p50/p99 request latency;
2. end to end: waits until the fake has accepted a send for every message id the
   webhook returned: sends/s and event→provider-accepted p50/p99, mapping the fake's
   requests to messages by `biz_opaque_callback_data` ("dakiya:<id>").

Prints a table and writes bench-results-pipeline.json. Everything it started is
stopped again (process groups killed), also on the global timeout.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import requests

from bench.ratelimit import percentile_ms
from bot.signing import sign_hmac
from tests.fakes.redis_server import free_port, private_redis
from tests.fakes.whatsapp_api import FakeWhatsApp

ROOT = Path(__file__).resolve().parent.parent
RESULTS_FILE = Path("bench-results-pipeline.json")
SECRET = "bench-order-secret"
HIGH_LIMIT = "1000000/minute"


class Deadline(Exception):
    pass


class TimedFake(FakeWhatsApp):
    """FakeWhatsApp that also stamps when each request was answered (after `latency`)."""

    def __post_init__(self) -> None:
        self.accepted_at: list[tuple[float, str | None]] = []
        super().__post_init__()

    def _next(self, default):
        from flask import request

        body = request.get_json(silent=True) or {}
        with self._lock:
            self.accepted_at.append((time.monotonic(), body.get("biz_opaque_callback_data")))
        return super()._next(default)


def spawn(command: list[str], env: dict, log: Path, stack: ExitStack) -> subprocess.Popen:
    """Start a subprocess in its own process group; killing the group on exit."""
    out = open(log, "wb")  # noqa: SIM115  (closed by the stack)
    proc = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )

    def stop() -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(5)
                break
            except subprocess.TimeoutExpired:
                continue
        out.close()

    stack.callback(stop)
    return proc


def pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    if not found:
        raise SystemExit("PostgreSQL is not installed (apt-get install postgresql)")
    return found[-1]


@contextmanager
def postgres(workdir: Path):
    """A throw-away cluster on a free loopback port (as the postgres user when root)."""
    as_pg = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
    pgdir = workdir / "pgroot"
    pgdir.mkdir()
    if as_pg:
        shutil.chown(pgdir, "postgres")
    port = free_port()
    bindir = pg_bin()
    quiet = {"stdout": subprocess.DEVNULL, "check": True}
    subprocess.run(
        [*as_pg, bindir / "initdb", "-D", pgdir / "pg", "-U", "postgres", "-A", "trust"], **quiet
    )
    opts = f"-p {port} -k {pgdir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    ctl = [*as_pg, bindir / "pg_ctl", "-D", pgdir / "pg"]
    subprocess.run([*ctl, "-l", pgdir / "pg.log", "-w", "-o", opts, "start"], **quiet)
    try:
        subprocess.run(
            [
                bindir / "psql",
                "-q",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "postgres",
                "-c",
                "CREATE DATABASE dakiya_bench",
            ],
            **quiet,
        )
        yield f"postgresql://postgres@127.0.0.1:{port}/dakiya_bench"
    finally:
        subprocess.run([*ctl, "-m", "immediate", "stop"], stdout=subprocess.DEVNULL, check=False)


def wait_for(check, what: str, deadline: float, interval: float = 0.1):
    while True:
        try:
            result = check()
            if result:
                return result
        except Exception:  # noqa: BLE001  (not up yet)
            pass
        if time.monotonic() > deadline:
            raise Deadline(f"timed out waiting for {what}")
        time.sleep(interval)


def event_body(run: str, i: int) -> bytes:
    event = {
        "event_id": f"bench-{run}-{i}",
        "event": "placed",
        "order": {"id": f"B{run}{i}", "number": f"#{i}", "total": "499.00", "currency": "INR"},
        "customer": {
            "phone": f"+91 98{i:08d}",
            "name": f"Customer {i}",
            "language": "en",
            "country": "IN",
        },
    }
    return json.dumps(event).encode()


def ingest(url: str, events: int, threads: int, deadline: float) -> list[dict]:
    """Post every event; returns per event: sent (monotonic), latency, status, message ids."""
    run = str(int(time.time()))
    bodies = [event_body(run, i) for i in range(events)]
    local = threading.local()

    def post(i: int) -> dict:
        if time.monotonic() > deadline:
            return {"sent": None, "latency": None, "status": None, "ids": []}
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        body = bodies[i]
        headers = {
            "Content-Type": "application/json",
            "X-Signature-256": "sha256=" + sign_hmac(SECRET, body),
        }
        sent = time.monotonic()
        try:
            response = session.post(
                f"{url}/webhooks/orders", data=body, headers=headers, timeout=30
            )
            status = response.status_code
            ids = response.json().get("message_ids", []) if status in (200, 202) else []
        except requests.RequestException:
            status, ids = None, []
        return {"sent": sent, "latency": time.monotonic() - sent, "status": status, "ids": ids}

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(post, range(events)))


def measure(args, stack: ExitStack, deadline: float) -> dict:
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-pipeline-")))
    os.chmod(workdir, 0o755)

    redis_url = stack.enter_context(private_redis(str(workdir)))
    if args.db == "postgres":
        database_url = stack.enter_context(postgres(workdir))
    else:
        database_url = f"sqlite:///{workdir / 'dakiya.db'}"

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the fake's access log
    fake = TimedFake(latency=args.latency).start()
    stack.callback(fake.stop)

    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "WHATSAPP_PROVIDER": "meta",
        "META_API_BASE_URL": fake.url,
        "META_ACCESS_TOKEN": "bench-token",
        "META_PHONE_NUMBER_ID": "100000000000001",
        "META_APP_SECRET": "bench-app-secret",
        "META_VERIFY_TOKEN": "bench-verify",
        "ORDER_WEBHOOK_SECRET": SECRET,
        "SHOPIFY_WEBHOOK_SECRET": "bench-shopify",
        "WOOCOMMERCE_WEBHOOK_SECRET": "bench-woo",
        "SUPPRESSION_SALT": "bench-salt",
        "SEND_RATE_PER_SECOND": str(args.rate),
        "MIN_GAP_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
        "DEFAULT_RATE_LIMIT": HIGH_LIMIT,
        "WEBHOOK_RATE_LIMIT": HIGH_LIMIT,
        "ADMIN_RATE_LIMIT": HIGH_LIMIT,
        "WEB_CONCURRENCY": str(args.web_workers),
        "PYTHONUNBUFFERED": "1",
    }
    bindir = Path(sys.executable).parent
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "migrate"],
        env=env,
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=max(1.0, deadline - time.monotonic()),
    )

    web_port = free_port()
    web_url = f"http://127.0.0.1:{web_port}"
    gunicorn = [
        str(bindir / "gunicorn"),
        "-c",
        "gunicorn.conf.py",
        "--bind",
        f"127.0.0.1:{web_port}",
        "--access-logfile",
        "/dev/null",
        "wsgi:app",
    ]
    spawn(gunicorn, env, workdir / "gunicorn.log", stack)
    for n in range(args.workers):
        spawn([sys.executable, "-m", "jobs.worker"], env, workdir / f"worker{n}.log", stack)
    wait_for(lambda: requests.get(f"{web_url}/healthz", timeout=2).ok, "gunicorn", deadline)
    time.sleep(2.0)  # let the RQ workers register and preload before the clock starts

    t0 = time.monotonic()
    posts = ingest(web_url, args.events, args.threads, deadline)
    t1 = time.monotonic()
    accepted = [p for p in posts if p["status"] in (200, 202)]
    statuses: dict[str, int] = {}
    for p in posts:
        statuses[str(p["status"])] = statuses.get(str(p["status"]), 0) + 1
    sent_at = {mid: p["sent"] for p in accepted for mid in p["ids"]}

    def first_accept() -> dict[int, float]:
        seen: dict[int, float] = {}
        for at, callback in list(fake.accepted_at):
            if callback and callback.startswith("dakiya:"):
                mid = int(callback.removeprefix("dakiya:"))
                seen.setdefault(mid, at)
        return seen

    timed_out = False
    while True:
        seen = first_accept()
        if all(mid in seen for mid in sent_at):
            break
        if time.monotonic() > deadline:
            timed_out = True
            break
        time.sleep(0.2)
    matched = {mid: seen[mid] for mid in sent_at if mid in seen}
    e2e = [seen_at - sent_at[mid] for mid, seen_at in matched.items()]
    done_at = max(matched.values(), default=t0)
    first_send = min(matched.values(), default=t0)
    ingest_lat = [p["latency"] for p in accepted]

    logs_tail = {}
    for log in sorted(workdir.glob("*.log")):
        text = log.read_text(errors="replace").strip().splitlines()
        errors = [line for line in text if "Error" in line or "Traceback" in line]
        if errors:
            logs_tail[log.name] = errors[-3:]

    return {
        "db": args.db,
        "events": args.events,
        "threads": args.threads,
        "web_workers": args.web_workers,
        "rq_workers": args.workers,
        "provider_latency_s": args.latency,
        "send_rate_per_second": args.rate,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "ingest": {
            "statuses": statuses,
            "accepted": len(accepted),
            "seconds": round(t1 - t0, 3),
            "accepted_per_s": round(len(accepted) / (t1 - t0), 1),
            "latency_ms": {
                "p50": round(percentile_ms(ingest_lat, 0.5), 1),
                "p99": round(percentile_ms(ingest_lat, 0.99), 1),
            },
        },
        "end_to_end": {
            "messages": len(sent_at),
            "sent": len(matched),
            "provider_requests": len(fake.accepted_at),
            "timed_out": timed_out,
            "seconds_from_first_post": round(done_at - t0, 3),
            "sends_per_s": round(len(matched) / (done_at - t0), 1) if done_at > t0 else 0.0,
            "sends_per_s_from_first_send": round(len(matched) / (done_at - first_send), 1)
            if done_at > first_send
            else 0.0,
            "event_to_accepted_ms": {
                "p50": round(percentile_ms(e2e, 0.5), 1),
                "p99": round(percentile_ms(e2e, 0.99), 1),
                "max": round(percentile_ms(e2e, 1.0), 1),
            },
        },
        "log_errors": logs_tail,
    }


def report(r: dict) -> str:
    i, e = r["ingest"], r["end_to_end"]
    rows = [
        ("database", r["db"]),
        (
            "setup",
            f"{r['cpus']} CPUs, gunicorn {r['web_workers']} workers, "
            f"{r['rq_workers']} RQ workers, fake latency {r['provider_latency_s']} s",
        ),
        ("events posted", f"{r['events']} from {r['threads']} threads  (statuses {i['statuses']})"),
        ("ingest", f"{i['accepted']} accepted in {i['seconds']:.2f} s = {i['accepted_per_s']}/s"),
        ("ingest latency ms", f"p50 {i['latency_ms']['p50']}  p99 {i['latency_ms']['p99']}"),
        (
            "messages sent",
            f"{e['sent']} of {e['messages']}  ({e['provider_requests']} provider "
            f"requests){'  TIMED OUT' if e['timed_out'] else ''}",
        ),
        (
            "send rate",
            f"{e['sends_per_s']}/s over {e['seconds_from_first_post']:.2f} s from "
            f"first post  ({e['sends_per_s_from_first_send']}/s from first send)",
        ),
        (
            "event→accepted ms",
            f"p50 {e['event_to_accepted_ms']['p50']}  "
            f"p99 {e['event_to_accepted_ms']['p99']}  "
            f"max {e['event_to_accepted_ms']['max']}",
        ),
    ]
    return "\n".join(f"{name:<22}  {value}" for name, value in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="RQ worker processes")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--latency", type=float, default=0.2, help="fake provider seconds/send")
    parser.add_argument("--rate", type=int, default=1000, help="SEND_RATE_PER_SECOND")
    parser.add_argument("--timeout", type=float, default=180.0, help="global limit, seconds")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.timeout
    with ExitStack() as stack:
        try:
            results = measure(args, stack, deadline)
        except Deadline as exc:
            print(f"bench.pipeline: {exc}", file=sys.stderr)
            return 1
    print(report(results))
    for name, lines in results["log_errors"].items():
        print(f"  errors in {name}: {lines}")
    RESULTS_FILE.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results written to {RESULTS_FILE}")
    return 0  # it measures; a timed-out run still reports what was sent


if __name__ == "__main__":
    sys.exit(main())
