"""Fixtures: a real Redis server, a real database (SQLite per test, or the Postgres named
by TEST_DATABASE_URL), the app, its client, a job runner, signing and payload helpers.
"""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from hypothesis import settings as hypothesis_settings
from peewee import PostgresqlDatabase
from rq import Queue, SimpleWorker
from rq.registry import ScheduledJobRegistry
from werkzeug.security import generate_password_hash

import jobs
from bot import create_app
from bot.core.config import Settings
from bot.core.models import ALL_MODELS, db, migrate_database, utcnow
from bot.core.signing import sign_hmac
from bot.extensions import QUEUE_NAMES, services
from bot.intake import inbox
from tests.fakes.redis_server import free_port, private_redis

# No per-example deadline: it is a timing assertion, and a loaded 2-core CI machine (the
# first example also loads time zone files) trips it on correct code.
hypothesis_settings.register_profile("dakiya", deadline=None)
hypothesis_settings.load_profile("dakiya")

PAYLOADS = Path(__file__).parent / "payloads"

# Cheap hashes (tests log in often); production hashes use werkzeug's default.
ADMIN_PASSWORD, VIEWER_PASSWORD = "correct horse", "battery staple"
ADMIN_USERS = ",".join(
    f"{name}:{name}:{generate_password_hash(password, method='pbkdf2:sha256:1000')}"
    for name, password in (("admin", ADMIN_PASSWORD), ("viewer", VIEWER_PASSWORD))
)


def basic_auth(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


#: An admin's headers for state-changing requests (see bot.web.auth: JSON or this header).
ADMIN = {**basic_auth("admin", ADMIN_PASSWORD), "X-Requested-With": "tests"}
VIEWER = {**basic_auth("viewer", VIEWER_PASSWORD), "X-Requested-With": "tests"}

SECRETS = {
    "order_webhook_secret": "test-order-secret",
    "shopify_webhook_secret": "test-shopify-secret",
    "woocommerce_webhook_secret": "test-woo-secret",
    "meta_access_token": "test-meta-token",
    "meta_phone_number_id": "106540352242922",
    "meta_app_secret": "test-meta-app-secret",
    "meta_verify_token": "test-verify-token",
    "interakt_api_key": "dGVzdC1pbnRlcmFrdC1rZXk6",
    "interakt_webhook_secret": "test-interakt-secret",
    "suppression_salt": "test-suppression-salt",
}


@pytest.fixture(scope="session")
def redis_url():
    """A real Redis server for the whole run (TEST_REDIS_URL, or one started here)."""
    if os.environ.get("TEST_REDIS_URL"):
        yield os.environ["TEST_REDIS_URL"]
        return
    with private_redis() as url:
        yield url


@pytest.fixture
def redis_conn(redis_url):
    from bot.core import telemetry

    conn = redis.Redis.from_url(redis_url)
    conn.flushdb()  # hygiene, as RQ's own tests do
    telemetry.WEBHOOKS.discard()  # an earlier test's buffered counts are not this one's
    yield conn
    conn.flushdb()


_postgres_migrated = False


@pytest.fixture
def database_url(tmp_path):
    return os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_path}/dakiya.db"


@pytest.fixture
def settings(database_url, redis_url, tmp_path) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        whatsapp_provider="sandbox",
        sandbox_receipt_delay_seconds=0,
        receipt_drain_linger_seconds=0,  # run_jobs would wait for receipts that never come
        admin_users=ADMIN_USERS,
        **SECRETS,
    )


@pytest.fixture
def make_app(redis_conn):
    """Build an app for `settings`; the test's first app starts on an empty database."""
    apps = []

    def build(settings: Settings):
        global _postgres_migrated
        app = create_app(settings)
        jobs.init_app(app)  # as wsgi.py does: the job commands
        ctx = app.app_context()
        ctx.push()
        apps.append(ctx)
        first = len(apps) == 1
        if settings.database_url.startswith("sqlite") or not _postgres_migrated:
            migrate_database()
            _postgres_migrated = _postgres_migrated or settings.database_url.startswith("postgres")
        if first and settings.database_url.startswith("postgres"):
            empty_database()
        return app

    yield build
    for ctx in reversed(apps):
        if hasattr(db.obj, "close_all"):
            db.obj.close_all()
        elif not db.is_closed():
            db.close()
        ctx.pop()


def empty_database() -> None:
    """Every table emptied and its ids restarting at 1, on PostgreSQL and on SQLite (whose
    integer keys restart by themselves once a table is empty)."""
    if isinstance(db.obj, PostgresqlDatabase):
        tables = ", ".join(f'"{m._meta.table_name}"' for m in ALL_MODELS)
        db.execute_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        return
    with db.atomic():
        for model in reversed(ALL_MODELS):  # dependants first
            model.delete().execute()


@pytest.fixture
def app(make_app, settings):
    return make_app(settings)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def run_jobs(redis_conn):
    """Run every job that is due, including scheduled ones whose time has come, until
    none is left; returns how many ran."""

    def run(max_rounds: int = 20) -> int:
        queues = [Queue(name, connection=redis_conn) for name in QUEUE_NAMES]
        ran = 0
        for _ in range(max_rounds):
            now = datetime.now(UTC)
            for queue in queues:
                registry = ScheduledJobRegistry(queue=queue)
                for job_id in registry.get_jobs_to_schedule(now.timestamp()):
                    job = queue.fetch_job(job_id)
                    registry.remove(job_id)
                    if job is not None:
                        queue.enqueue_job(job)
            pending = sum(q.count for q in queues)
            if not pending:
                break
            worker = SimpleWorker(queues, connection=redis_conn)
            worker.work(burst=True)
            ran += pending
        return ran

    return run


@pytest.fixture
def sign():
    """Sign a body the way a sender does: sign(secret, body, "hex"|"base64")."""
    return sign_hmac


def load_payload(name: str) -> dict:
    """tests/payloads/<provider or source>/<file>.json"""
    return json.loads((PAYLOADS / f"{name}.json").read_text())


@pytest.fixture
def payload():
    return load_payload


@pytest.fixture(scope="session")
def fake_whatsapp_server():
    from tests.fakes.whatsapp_api import FakeWhatsApp

    server = FakeWhatsApp().start()
    yield server
    server.stop()


@pytest.fixture
def fake_whatsapp(fake_whatsapp_server):
    """The fake Meta/Interakt API, emptied for this test."""
    fake_whatsapp_server.reset()
    return fake_whatsapp_server


@pytest.fixture
def meta_settings(settings, fake_whatsapp) -> Settings:
    return settings.replace(whatsapp_provider="meta", meta_api_base_url=fake_whatsapp.url)


class DatabaseOutage:
    """Points the app at a database server that is not there, until `end()`."""

    def __init__(self) -> None:
        from bot.extensions import open_database

        self._real = db.obj
        db.initialize(open_database(f"postgresql://nobody@127.0.0.1:{free_port()}/gone"))

    def end(self) -> None:
        db.initialize(self._real)


@pytest.fixture
def database_down(app):
    """A real connection failure: the database URL leads nowhere while the test runs."""
    outage = DatabaseOutage()
    yield outage
    outage.end()


@pytest.fixture
def take_in(app):
    """Take the kept webhook deliveries in, as the inbox's drain jobs do (receipts
    applied, customers answered), leaving every other job, sends included, queued."""
    from jobs.inbox import take_inbound, take_receipts

    return lambda: take_inbound() + take_receipts()


@pytest.fixture
def say(client, sign, run_jobs):
    """Post a customer's WhatsApp message through Meta's webhook (signed) and run the
    jobs it causes (`run=False`: only store it, as the inbox's take-in does, and leave
    its answer and every other job to come)."""

    def post(body: dict, run: bool = True) -> None:
        raw = json.dumps(body, ensure_ascii=False).encode()
        signature = "sha256=" + sign(SECRETS["meta_app_secret"], raw)
        response = client.post(
            "/webhooks/whatsapp/meta",
            data=raw,
            headers={"X-Hub-Signature-256": signature},
            content_type="application/json",
        )
        assert response.status_code == 200
        if run:
            run_jobs()
        else:
            inbox.take_batch(services(), inbox.Lane.INBOUND, utcnow())

    return post
