"""Fixtures for the fault tests: a restartable Redis, a fresh database (PostgreSQL when
TEST_DATABASE_URL names a server, else a SQLite file), the fake provider, and the
system's processes, all stopped again after each test (their logs printed on failure).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from playhouse.db_url import connect

from bot.core.models import db
from bot.extensions import open_database
from tests.chaos.system import (
    PostgresCluster,
    RedisServer,
    System,
    base_env,
    fresh_postgres_database,
)
from tests.conftest import SECRETS
from tests.fakes.provider_server import FakeProvider


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def chaos_dir(tmp_path):
    return tmp_path


@pytest.fixture
def redis_server(chaos_dir) -> Iterator[RedisServer]:
    server = RedisServer(chaos_dir).start()
    yield server
    server.stop()


@pytest.fixture
def chaos_database_url(chaos_dir) -> Iterator[str]:
    server = os.environ.get("TEST_DATABASE_URL")
    if server:
        with fresh_postgres_database(server) as url:
            yield url
    else:
        yield f"sqlite:///{chaos_dir}/dakiya.db"


@pytest.fixture
def postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL server of the test's own, which it may stop and start."""
    cluster = PostgresCluster().start()
    yield cluster
    cluster.destroy()


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    """The fake Meta Cloud API, in this process; it signs its receipts with Dakiya's app
    secret once a test points `receipts_url` at the web process."""
    fake = FakeProvider(latency=0.2, app_secret=SECRETS["meta_app_secret"], seed=8).start()
    yield fake
    fake.stop()


def use_database(url: str) -> None:
    """Point this process's models at `url` to read what the system wrote (no pool, so
    a database restart leaves no stale connection behind)."""
    if url.startswith("sqlite"):
        db.initialize(open_database(url))
    else:
        db.initialize(connect(url))


@pytest.fixture
def make_system(
    request, chaos_dir, redis_server, chaos_database_url
) -> Iterator[Callable[..., System]]:
    """Build the system with the fake provider at `provider_url`, on `database_url`
    (default: the test's fresh database); `**env` overrides settings
    (SEND_LEASE_SECONDS="3", ...). Migrated, not started."""
    systems: list[System] = []

    def build(provider_url: str, database_url: str | None = None, **env: str) -> System:
        database_url = database_url or chaos_database_url
        system = System(
            chaos_dir, {**base_env(database_url, redis_server.url, provider_url), **env}
        )
        systems.append(system)
        system.migrate()
        use_database(database_url)
        return system

    yield build
    failed = getattr(request.node, "report_call", None)
    for system in systems:
        if failed is not None and failed.failed:
            print(system.log_tails())  # noqa: T201  (the logs explain a failure)
        system.stop()
    if db.obj is not None and not db.is_closed():
        db.close()
