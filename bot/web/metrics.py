"""`GET /metrics` for Prometheus: read from the database and Redis at scrape time.

Counting at scrape time, rather than in process-local counters, keeps the figures right
with any number of web and worker processes (RQ forks a process per job): the database
is the one place that knows every message's state and reason.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime, timedelta

from flask import Blueprint, Response, request
from peewee import SQL, fn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from rq import Queue

from bot.core import runtime, spool, telemetry
from bot.core.models import (
    ConsentEvent,
    InboundMessage,
    Message,
    OrderEvent,
    SpoolDeadLetter,
    State,
    StatusEvent,
    UnhandledUpdate,
    utcnow,
)
from bot.extensions import QUEUE_NAMES, Services, services
from bot.intake import inbox
from bot.observability import cod_stats, spend
from bot.web.auth import verify_password
from bot.web.errors import error_response

bp = Blueprint("metrics", __name__)


def grouped(
    name: str, help_text: str, query, columns: list, labels: list[str]
) -> GaugeMetricFamily:
    """A gauge with one sample per group of `query` (counted by the database)."""
    family = GaugeMetricFamily(name, help_text, labels=labels)
    rows = query.select(*columns, fn.COUNT(SQL("*")).alias("n")).group_by(*columns)
    for row in rows.dicts():
        family.add_metric([str(row[c.name] or "") for c in columns], row["n"])
    return family


class DakiyaCollector:
    """Current totals from the database, queue figures from Redis, and the counters and
    histograms every process recorded (bot.core.telemetry)."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc

    def collect(self):
        yield grouped(
            "dakiya_messages",
            "Messages by state, reason code and category (suppressions and deferrals included).",
            Message.select(),
            [Message.state, Message.reason, Message.category],
            ["state", "reason", "category"],
        )
        yield grouped(
            "dakiya_messages_by_template",
            "Messages by template, provider and state.",
            Message.select(),
            [Message.template_name, Message.provider, Message.state],
            ["template", "provider", "state"],
        )
        yield grouped(
            "dakiya_failures_by_code",
            "Failed messages by the provider's error code.",
            Message.select().where(Message.state == State.FAILED),
            [Message.error_code],
            ["code"],
        )
        yield grouped(
            "dakiya_consent_changes",
            "Opt-ins and opt-outs recorded, by category, action and source.",
            ConsentEvent.select(),
            [ConsentEvent.category, ConsentEvent.action, ConsentEvent.source],
            ["category", "action", "source"],
        )
        yield grouped(
            "dakiya_order_events",
            "Order events accepted, by source.",
            OrderEvent.select(),
            [OrderEvent.source],
            ["source"],
        )
        yield GaugeMetricFamily(
            "dakiya_receipts", "Delivery receipts stored.", value=StatusEvent.select().count()
        )
        yield GaugeMetricFamily(
            "dakiya_inbound_messages",
            "Customer messages stored.",
            value=InboundMessage.select().count(),
        )
        yield grouped(
            "dakiya_unhandled_updates",
            "Parts of signed WhatsApp webhooks kept raw, not acted on, by provider and reason.",
            UnhandledUpdate.select(),
            [UnhandledUpdate.provider, UnhandledUpdate.reason],
            ["provider", "reason"],
        )
        depth = GaugeMetricFamily(
            "dakiya_queue_depth", "Jobs waiting in each RQ queue.", labels=["queue"]
        )
        age = GaugeMetricFamily(
            "dakiya_queue_oldest_job_seconds",
            "Age of the oldest job waiting in each queue.",
            labels=["queue"],
        )
        for name in QUEUE_NAMES:
            depth.add_metric([name], self.svc.queues[name].count)
            age.add_metric([name], oldest_job_age(self.svc.queues[name]))
        yield depth
        yield age
        yield from inbox_lanes()
        yield GaugeMetricFamily(
            "dakiya_spool_entries",
            "Deliveries waiting in the spool for the database.",
            value=spool.size(self.svc.redis),
        )
        yield GaugeMetricFamily(
            "dakiya_spool_dead_letters",
            "Spooled deliveries that could not be stored, waiting for an admin.",
            value=SpoolDeadLetter.select().count(),
        )
        yield from spend_this_month(self.svc)
        yield from cod_answers()
        yield from telemetry.collect(self.svc.redis)


def inbox_lanes():
    """Kept webhook deliveries not taken in yet, and how long the oldest has waited, per
    lane (bot/intake/inbox.py): a growing figure means the workers fall behind."""
    entries = GaugeMetricFamily(
        "dakiya_inbox_entries", "Webhook deliveries kept, waiting for a worker.", labels=["lane"]
    )
    age = GaugeMetricFamily(
        "dakiya_inbox_oldest_seconds",
        "How long the oldest kept webhook delivery has waited, per lane.",
        labels=["lane"],
    )
    now = utcnow()
    for lane, kept in inbox.waiting().items():
        entries.add_metric([lane.value], kept.entries)
        age.add_metric([lane.value], (now - kept.oldest).total_seconds() if kept.oldest else 0)
    yield entries
    yield age


def cod_answers():
    """COD confirmations sent in the last 14 days (UTC) by outcome, and the median
    minutes to a tap (bot/observability/cod_stats.py)."""
    today = datetime.now(UTC).date()
    summed = cod_stats.totals(cod_stats.cod_outcomes(today - timedelta(days=13), today))
    outcomes = GaugeMetricFamily(
        "dakiya_cod_confirmations_14d",
        "COD confirmations sent in the last 14 days, by the customer's answer.",
        labels=["answer"],
    )
    for answer in cod_stats.OUTCOMES:
        outcomes.add_metric([answer], summed[answer])
    yield outcomes
    yield GaugeMetricFamily(
        "dakiya_cod_answer_median_minutes_14d",
        "Median minutes from a COD confirmation to the customer's tap (last 14 days).",
        value=summed["median_minutes"] or 0,
    )


def spend_this_month(svc: Services):
    """Billable messages and their estimated cost this calendar month (UTC), per pricing
    category, from the spend rollups and the rate card in force."""
    today = datetime.now(UTC).date()
    card = runtime.rate_card(svc.settings.rate_card_file)
    report = spend.summary(spend.month_start(today), today, card)
    billable = GaugeMetricFamily(
        "dakiya_billable_messages_this_month",
        "Billable, delivered messages this month (UTC), by Meta's pricing category.",
        labels=["category"],
    )
    cost = GaugeMetricFamily(
        "dakiya_estimated_spend_this_month",
        "Estimated WhatsApp spend this month (UTC) at the rate card, by pricing category.",
        labels=["category", "currency"],
    )
    for row in report["by_category"]:
        billable.add_metric([row["key"]], row["billable"])
        cost.add_metric([row["key"], report["currency"]], float(row["estimated_spend"]))
    yield billable
    yield cost


def oldest_job_age(queue: Queue) -> float:
    """Seconds the first job in `queue` has waited (0 when the queue is empty)."""
    job_ids = queue.get_job_ids(0, 1)
    job = queue.fetch_job(job_ids[0]) if job_ids else None
    if job is None or job.enqueued_at is None:
        return 0.0
    enqueued = job.enqueued_at if job.enqueued_at.tzinfo else job.enqueued_at.replace(tzinfo=UTC)
    return max((datetime.now(UTC) - enqueued).total_seconds(), 0.0)


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
