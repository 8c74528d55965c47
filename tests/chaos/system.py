"""The real system for the fault tests: redis-server, PostgreSQL (or a SQLite file),
gunicorn and `python -m jobs.worker` processes on 127.0.0.1, each of which a test can
stop, kill or restart, and helpers to post signed order events and read the rows back.

Every process runs in its own process group, so killing a worker also kills its RQ
work-horse and cron children, as a crashed dyno would lose them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import redis
import requests

from bot.core.signing import sign_hmac
from tests.conftest import SECRETS, load_payload
from tests.fakes.postgres_server import PostgresCluster  # noqa: F401 (the fixtures')
from tests.fakes.redis_server import free_port, redis_server_binary

ROOT = Path(__file__).resolve().parents[2]
ORDER_SECRET = SECRETS["order_webhook_secret"]
HIGH_LIMIT = "1000000/minute"
METRICS_TOKEN = "chaos-metrics"


class Gone(Exception):
    """A process the test needs ended on its own."""


def eventually(check: Callable[[], object], seconds: float, what: str, every: float = 0.2):
    """Poll `check` until it returns something true (a liveness wait with a deadline,
    never a timing assertion); fail naming `what` when the deadline passes."""
    deadline = time.monotonic() + seconds
    last_error: Exception | None = None
    while True:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001  (not up yet, or mid-restart)
            last_error = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} ({last_error!r})")
        time.sleep(every)


def descendants(pid: int) -> list[int]:
    """Every live process below `pid`, read from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@dataclass
class Process:
    """A subprocess in its own process group, its output in `log`."""

    name: str
    command: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen | None = None

    def start(self) -> Process:
        out = open(self.log, "ab")  # noqa: SIM115  (the child owns it; closed on stop)
        self.popen = subprocess.Popen(
            self.command,
            env=self.env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        return self

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the whole process tree: the worker, its cron child, and the RQ
        work-horse, which runs in a session of its own."""
        if self.popen is None:
            return
        tree = descendants(self.popen.pid)  # before the kill re-parents them
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass
        for pid in tree:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        """SIGTERM the group, SIGKILL it if it lingers; reap the leader."""
        if self.popen is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            self.kill(sig)
            try:
                self.popen.wait(10)
                break
            except subprocess.TimeoutExpired:
                continue
        self.kill(signal.SIGKILL)  # children the leader left behind

    def tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


class RedisServer:
    """A real redis-server without persistence that can be stopped and started again on
    the same port: a restart loses every queue, as a crashed managed Redis may."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        command = [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(workdir)]
        self.process = Process("redis", command, dict(os.environ), workdir / "redis.log")

    def start(self) -> RedisServer:
        self.process.start()
        with redis.Redis.from_url(self.url) as conn:
            eventually(conn.ping, 10, "redis-server to answer", every=0.05)
        return self

    def stop(self) -> None:
        self.process.stop()


@contextmanager
def fresh_postgres_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server of `server_url`; dropped afterwards."""
    name = f"chaos_{uuid.uuid4().hex[:12]}"
    admin = server_url.rsplit("/", 1)[0] + "/postgres"

    def run(sql: str) -> None:
        conn = psycopg2.connect(admin)
        conn.autocommit = True
        try:
            conn.cursor().execute(sql)
        finally:
            conn.close()

    run(f'CREATE DATABASE "{name}"')
    try:
        yield server_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def base_env(database_url: str, redis_url: str, provider_url: str) -> dict[str, str]:
    """The environment every process of the system shares: the fake provider as Meta,
    every secret, no per-IP limits, no quiet hours or pair gap, and fast sweeps."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"TEST_DATABASE_URL", "TEST_REDIS_URL"}
    }
    env.update({name.upper(): value for name, value in SECRETS.items()})
    env.update(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "WHATSAPP_PROVIDER": "meta",
            "META_API_BASE_URL": provider_url,
            "SEND_RATE_PER_SECOND": "1000",
            "MIN_GAP_SECONDS": "0",
            "QUIET_HOURS_MARKETING": "off",
            "LOG_LEVEL": "INFO",
            "DEFAULT_RATE_LIMIT": HIGH_LIMIT,
            "WEBHOOK_RATE_LIMIT": HIGH_LIMIT,
            "ADMIN_RATE_LIMIT": HIGH_LIMIT,
            "WEB_CONCURRENCY": "2",
            "METRICS_TOKEN": METRICS_TOKEN,
            "PYTHONUNBUFFERED": "1",
            # Fault tests want recovery in seconds, not minutes.
            "SEND_LEASE_SECONDS": "6",
            "SWEEP_INTERVAL_SECONDS": "2",
            "RETRY_BASE_SECONDS": "0.5",
            "RETRY_MAX_SECONDS": "2",
            "MAX_SEND_ATTEMPTS": "30",
            "AMBIGUOUS_SEND_HOLD_SECONDS": "20",
            "PROVIDER_TIMEOUT_SECONDS": "5",
        }
    )
    return env


@dataclass
class System:
    """Dakiya as it runs in production, on this machine: web, workers, Redis, database."""

    workdir: Path
    env: dict[str, str]
    processes: list[Process] = field(default_factory=list)
    web_url: str = ""
    _workers: int = 0

    def migrate(self) -> None:
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", "migrate"],
            env=self.env,
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=120,
        )

    def start_web(self) -> str:
        port = free_port()
        gunicorn = Path(sys.executable).parent / "gunicorn"
        command = [str(gunicorn), "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}"]
        command += ["--access-logfile", "/dev/null", "wsgi:app"]
        self._add(Process("web", command, self.env, self.workdir / "web.log").start())
        self.web_url = f"http://127.0.0.1:{port}"
        eventually(lambda: requests.get(f"{self.web_url}/healthz", timeout=2).ok, 60, "gunicorn")
        return self.web_url

    def start_web_with_receipts(self, provider) -> str:
        """Start the web process and have the fake post its status webhooks to it."""
        url = self.start_web()
        provider.configure(receipts_url=f"{url}/webhooks/whatsapp/meta")
        return url

    def start_worker(self) -> Process:
        self._workers += 1
        name = f"worker{self._workers}"
        command = [sys.executable, "-m", "jobs.worker"]
        return self._add(Process(name, command, self.env, self.workdir / f"{name}.log").start())

    def _add(self, process: Process) -> Process:
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def metric(self, series: str) -> float:
        """One series of GET /metrics, e.g. 'dakiya_send_attempts_total{outcome="hold",
        provider="meta"}' (0 when absent): what every process counted, from Redis."""
        headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        text = requests.get(f"{self.web_url}/metrics", headers=headers, timeout=10).text
        for line in text.splitlines():
            if line.startswith(series + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def log_tails(self, lines: int = 25) -> str:
        parts = [f"--- {p.name} ({p.log}) ---\n{p.tail(lines)}" for p in self.processes]
        return "\n".join(parts)


@dataclass(frozen=True)
class Delivery:
    """One signed webhook delivery a shop makes (and makes again, byte for byte)."""

    path: str
    body: bytes
    headers: dict[str, str]


def order_event(run: str, i: int, event: str = "placed") -> Delivery:
    """A generic order event for a customer of its own (no caps or pair gaps apply)."""
    body = json.dumps(
        {
            "event_id": f"chaos-{run}-{i}-{event}",
            "event": event,
            "order": {
                "id": f"C{run}{i}",
                "number": f"#{i}",
                "total": "499.00",
                "currency": "INR",
            },
            "customer": {
                "phone": f"+91 97{i:08d}",
                "name": f"Customer {i}",
                "language": "en",
                "country": "IN",
            },
        }
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Signature-256": "sha256=" + sign_hmac(ORDER_SECRET, body),
    }
    return Delivery("/webhooks/orders", body, headers)


def shopify_order(run: str, i: int) -> Delivery:
    """Shopify's orders/create for an order and customer of its own (tests/payloads)."""
    payload = load_payload("shopify/orders_create")
    payload["id"] = 9_100_000_000_000 + i
    payload["name"] = f"#S{run}{i}"
    payload["shipping_address"]["phone"] = f"+91 96{i:08d}"
    payload["billing_address"]["phone"] = f"+91 96{i:08d}"
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Hmac-Sha256": sign_hmac(SECRETS["shopify_webhook_secret"], body, "base64"),
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Webhook-Id": f"wh-{run}-{i}",
        "X-Shopify-Event-Id": f"evt-{run}-{i}",
        "X-Shopify-Shop-Domain": "asha-store.myshopify.com",
    }
    return Delivery("/webhooks/orders/shopify", body, headers)


def woocommerce_order(run: str, i: int) -> Delivery:
    """WooCommerce's order.created (tests/payloads); WooCommerce never redelivers, so
    Dakiya spools it while the database is down."""
    payload = load_payload("woocommerce/order_created")
    payload["id"] = payload["number"] = 800_000 + i
    payload["billing"]["phone"] = f"+91 95{i:08d}"
    payload["shipping"]["phone"] = f"+91 95{i:08d}"
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-WC-Webhook-Source": "https://shop.example.in/",
        "X-WC-Webhook-Topic": "order.created",
        "X-WC-Webhook-Resource": "order",
        "X-WC-Webhook-Event": "created",
        "X-WC-Webhook-Signature": sign_hmac(SECRETS["woocommerce_webhook_secret"], body, "base64"),
        "X-WC-Webhook-ID": "3",
        "X-WC-Webhook-Delivery-ID": f"wc-{run}-{i}",
    }
    return Delivery("/webhooks/orders/woocommerce", body, headers)


@dataclass
class Shop:
    """Shops posting signed order events, remembering what Dakiya accepted; like a real
    shop they redeliver whatever was not answered 2xx."""

    web_url: str
    accepted: dict[int, list[int]] = field(default_factory=dict)  # event id -> message ids
    unanswered: list[Delivery] = field(default_factory=list)
    spooled: list[Delivery] = field(default_factory=list)  # accepted, stored later
    statuses: list[int | None] = field(default_factory=list)  # every answer, in order

    def post(self, deliveries: list[Delivery], threads: int = 8) -> list[int | None]:
        """Post each delivery once; their answers' statuses (None: no answer)."""
        local = threading.local()

        def one(delivery: Delivery) -> tuple[int | None, dict]:
            session = getattr(local, "session", None) or requests.Session()
            local.session = session
            url = f"{self.web_url}{delivery.path}"
            try:
                response = session.post(
                    url, data=delivery.body, headers=delivery.headers, timeout=15
                )
            except requests.RequestException:
                return None, {}
            ok = response.status_code in (200, 202)
            return response.status_code, response.json() if ok else {}

        with ThreadPoolExecutor(threads) as pool:
            answers = list(pool.map(one, deliveries))
        for delivery, (status, body) in zip(deliveries, answers, strict=True):
            self.statuses.append(status)
            if status == 202 and body.get("spooled"):
                self.spooled.append(delivery)
            elif status in (200, 202):
                ids = self.accepted.setdefault(body["event_id"], body["message_ids"])
                assert ids == body["message_ids"], f"event {body['event_id']} answered twice"
            else:
                self.unanswered.append(delivery)
        return [status for status, _ in answers]

    def redeliver(self, seconds: float = 60) -> None:
        """Post the unanswered deliveries again until each is answered 2xx."""

        def all_answered() -> bool:
            pending, self.unanswered = self.unanswered, []
            self.post(pending)
            return not self.unanswered

        eventually(all_answered, seconds, f"{len(self.unanswered)} deliveries to be accepted")

    @property
    def message_ids(self) -> list[int]:
        return sorted(mid for ids in self.accepted.values() for mid in ids)
