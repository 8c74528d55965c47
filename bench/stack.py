"""The processes a benchmark runs against: Redis, a database, the fake provider, gunicorn
and workers, all on 127.0.0.1, each stopped again by the `ExitStack` that started it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import requests

from tests.fakes.postgres_server import PostgresCluster
from tests.fakes.provider_server import RemoteFake, provider_process
from tests.fakes.redis_server import free_port, private_redis

ROOT = Path(__file__).resolve().parent.parent
ORDER_SECRET = "bench-order-secret"
APP_SECRET = "bench-app-secret"
PHONE_NUMBER_ID = "100000000000001"
HIGH_LIMIT = "1000000/minute"


class Deadline(Exception):
    pass


def wait_for(check: Callable, what: str, deadline: float, interval: float = 0.1):
    """Call `check` until it returns something true; `Deadline` past `deadline`."""
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


def spawn(command: list[str], env: dict, log: Path, stack: ExitStack) -> subprocess.Popen:
    """Start a subprocess in its own process group; the stack kills the group."""
    out = open(log, "wb")  # noqa: SIM115  (closed by the stack)
    proc = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )
    stack.callback(out.close)
    stack.callback(stop_group, proc)
    return proc


def stop_group(proc: subprocess.Popen, grace: float = 5.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def postgres() -> Iterator[PostgresCluster]:
    """A throw-away cluster tuned for throughput (no fsync, no synchronous commit)."""
    cluster = PostgresCluster(
        database="dakiya_bench",
        settings={
            "synchronous_commit": "off",
            "max_connections": "300",
            "shared_buffers": "256MB",
        },
    ).start()
    try:
        yield cluster
    finally:
        cluster.destroy()


@dataclass
class Stack:
    """What `start_stack` started; workers come and go during a run."""

    workdir: Path
    env: dict
    database_url: str
    redis_url: str
    fake: RemoteFake
    fake_pid: int
    web_url: str
    web: subprocess.Popen
    redis_pid: int | None = None
    db_pid: int | None = None  # the postmaster; None for SQLite
    workers: list[subprocess.Popen] = field(default_factory=list)


def app_env(args, database_url: str, redis_url: str, fake_url: str) -> dict:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "WHATSAPP_PROVIDER": "meta",
        "META_API_BASE_URL": fake_url,
        "META_ACCESS_TOKEN": "bench-token",
        "META_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
        "META_APP_SECRET": APP_SECRET,
        "META_VERIFY_TOKEN": "bench-verify",
        "ORDER_WEBHOOK_SECRET": ORDER_SECRET,
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
    if args.web_threads:
        env["WEB_THREADS"] = str(args.web_threads)
    for item in args.env:
        name, _, value = item.partition("=")
        env[name] = value
    return env


def start_stack(args, stack: ExitStack, workdir: Path, deadline: float) -> Stack:
    """Redis, database, migrations, fake provider (a subprocess) and gunicorn."""
    redis_url = stack.enter_context(private_redis(str(workdir)))
    cluster = stack.enter_context(postgres()) if args.db == "postgres" else None
    database_url = cluster.url if cluster else f"sqlite:///{workdir / 'dakiya.db'}"
    fake_options = ["--latency", str(args.latency), "--meta-token", "bench-token"]
    # Receipts (the combined phase points the fake at the web): one status per POST, as
    # Meta sends them, signed, many POSTs in flight.
    fake_options += ["--app-secret", APP_SECRET, "--receipt-batch", "1"]
    fake_options += ["--receipt-posters", "32"]
    if args.errors:
        fake_options += ["--errors", args.errors]
    fake, fake_pid = stack.enter_context(provider_process(*fake_options, log=workdir / "fake.log"))
    env = app_env(args, database_url, redis_url, fake.url)
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "migrate"],
        env=env,
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=max(1.0, deadline - time.monotonic()),
    )
    port = free_port()
    gunicorn = [
        str(Path(sys.executable).parent / "gunicorn"),
        *("-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}"),
        *("--access-logfile", "/dev/null", "wsgi:app"),
    ]
    web = spawn(gunicorn, env, workdir / "gunicorn.log", stack)
    web_url = f"http://127.0.0.1:{port}"
    wait_for(lambda: requests.get(f"{web_url}/healthz", timeout=2).ok, "gunicorn", deadline)
    redis_port = redis_url.rsplit(":", 1)[1].split("/")[0]
    redis_pid = next(
        (
            p.pid
            for p in psutil.process_iter(["name", "cmdline"])
            # redis-server retitles itself "redis-server 127.0.0.1:<port>"
            if "redis-server" in " ".join(p.info["cmdline"] or [])
            and f":{redis_port}" in " ".join(p.info["cmdline"] or [])
        ),
        None,
    )
    db_pid = cluster.pid if cluster else None
    return Stack(
        workdir, env, database_url, redis_url, fake, fake_pid, web_url, web, redis_pid, db_pid
    )


def start_workers(stk: Stack, stack: ExitStack, count: int, *, naive: bool = False) -> list:
    """The send path's workers, or with `naive` classic forking workers (one fork per
    job) on the queue "naive"."""
    command = [sys.executable, "-m", "jobs.worker"]
    if naive:
        command += ["--forking", "--queues", "naive"]
    started = []
    for n in range(count):
        name = f"{'naive' if naive else 'worker'}{n}.log"
        started.append(spawn(command, stk.env, stk.workdir / name, stack))
    stk.workers = started
    return started


def stop_workers(stk: Stack) -> None:
    for proc in stk.workers:
        stop_group(proc, grace=10.0)
    stk.workers = []


def web_worker_pids(stk: Stack) -> list[int]:
    """gunicorn's workers (the master only supervises)."""
    try:
        return [child.pid for child in psutil.Process(stk.web.pid).children()]
    except psutil.NoSuchProcess:
        return []


@contextmanager
def profiled(stk: Stack, args, phase: str) -> Iterator[None]:
    """With `--profile <phase>`: py-spy samples every web and send worker for
    `--profile-seconds` while the phase runs; collapsed stacks go to `--profile-dir`."""
    if phase not in args.profile:
        yield
        return
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out = Path(args.profile_dir)
    out.mkdir(parents=True, exist_ok=True)
    targets = [("web", pid) for pid in web_worker_pids(stk)]
    targets += [("worker", w.pid) for w in stk.workers]
    recorders = [
        subprocess.Popen(
            [
                *(py_spy, "record", "--pid", str(pid), "--format", "raw", "--nonblocking"),
                *(() if args.profile_cpu else ("--idle",)),  # waits too: wall time
                *("--duration", str(int(args.profile_seconds)), "--rate", "100"),
                *("--output", str(out / f"{args.db}-{phase}-{kind}-{pid}.txt")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for kind, pid in targets
    ]
    try:
        yield
    finally:
        for proc in recorders:
            try:
                proc.wait(args.profile_seconds + 30)
            except subprocess.TimeoutExpired:
                proc.kill()
