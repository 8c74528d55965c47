"""`GET /metrics` for Prometheus: read from the database and Redis at scrape time.

Counting at scrape time, rather than in process-local counters, keeps the figures right
with any number of web and worker processes (RQ forks a process per job): the database
is the one place that knows every message's state and reason.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, request
from peewee import fn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from bot import spool
from bot.auth import verify_password
from bot.errors import error_response
from bot.extensions import QUEUE_NAMES, Services, services
from bot.models import InboundMessage, Message, OrderEvent, StatusEvent

bp = Blueprint("metrics", __name__)


class DakiyaCollector:
    """Current totals, grouped the way dashboards and alerts need them."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc

    def collect(self):
        messages = GaugeMetricFamily(
            "dakiya_messages",
            "Messages by state, reason code and category (suppressions and deferrals included).",
            labels=["state", "reason", "category"],
        )
        rows = Message.select(
            Message.state, Message.reason, Message.category, fn.COUNT(Message.id).alias("n")
        )
        for row in rows.group_by(Message.state, Message.reason, Message.category):
            messages.add_metric([row.state, row.reason or "", row.category], row.n)
        yield messages

        events = GaugeMetricFamily(
            "dakiya_order_events", "Order events accepted, by source.", labels=["source"]
        )
        for row in OrderEvent.select(
            OrderEvent.source, fn.COUNT(OrderEvent.id).alias("n")
        ).group_by(OrderEvent.source):
            events.add_metric([row.source], row.n)
        yield events

        yield GaugeMetricFamily(
            "dakiya_receipts", "Delivery receipts stored.", value=StatusEvent.select().count()
        )
        yield GaugeMetricFamily(
            "dakiya_inbound_messages",
            "Customer messages stored.",
            value=InboundMessage.select().count(),
        )
        queues = GaugeMetricFamily(
            "dakiya_queue_depth", "Jobs waiting in each RQ queue.", labels=["queue"]
        )
        for name in QUEUE_NAMES:
            queues.add_metric([name], self.svc.queues[name].count)
        yield queues
        yield GaugeMetricFamily(
            "dakiya_spool_entries",
            "Deliveries waiting in the spool for the database.",
            value=spool.size(self.svc.redis),
        )


def is_allowed(token: str) -> bool:
    """METRICS_TOKEN as a bearer token, or the admin's basic-auth login."""
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    creds = request.authorization
    return bool(
        creds
        and creds.type == "basic"
        and verify_password(creds.username or "", creds.password or "")
    )


@bp.get("/metrics")
def metrics():
    """Prometheus metrics."""
    svc = services()
    if not is_allowed(svc.settings.metrics_token):
        response, status = error_response(
            401, "unauthorized", "a metrics token or admin login is required"
        )
        response.headers["WWW-Authenticate"] = 'Basic realm="Dakiya metrics"'
        return response, status
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DakiyaCollector(svc))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
