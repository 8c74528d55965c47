"""The periodic sweep: whatever Redis lost or a dead worker dropped, picked up again."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import click

from bot.campaigns import campaigns
from bot.core import telemetry
from bot.core.models import InboundMessage, StatusEvent, db, utcnow
from bot.core.triggers import single_run
from bot.delivery import claims, dispatch
from bot.delivery.receipts import APPLY_JOB
from bot.extensions import Services, services
from bot.intake import inbox
from bot.intake.intake import HANDLE_JOB, drain_spool
from bot.integrations import crm

log = logging.getLogger(__name__)

LOCK_KEY = "dakiya:sweep:lock"


def sweep() -> dict:
    """RQ entry point (run every SWEEP_INTERVAL_SECONDS by the worker's cron)."""
    svc = services()
    # One sweep at a time across all workers.
    with single_run(svc.redis, LOCK_KEY, max(svc.settings.sweep_interval_seconds, 5)) as ours:
        return sweep_once(svc, utcnow()) if ours else {"skipped": True}


def sweep_once(svc: Services, now: datetime) -> dict:
    """Drain the spool, re-enqueue stranded messages, and apply receipts, answer customer
    messages and deliver CRM events whose jobs were lost.

    Each phase runs on its own: one that fails (a poison row, an outage) is logged,
    counted in `dakiya_sweep_phase_failures_total{phase=...}` and named in the result's
    `failed_phases`, and the others still run.
    """
    grace = svc.settings.sweep_interval_seconds
    cutoff = now - timedelta(seconds=grace)
    result: dict = {}
    failed = []
    for name, phase in PHASES:
        try:
            with db.connection_context():
                result.update(phase(svc, now, cutoff))
        except Exception:
            log.exception("sweep phase %s failed; the other phases go on", name)
            telemetry.count(svc.redis, "sweep_phase_failures", {"phase": name})
            failed.append(name)
    if any(result.values()) or failed:
        log.log(logging.ERROR if failed else logging.INFO, "sweep: %s failed: %s", result, failed)
    return {**result, "failed_phases": failed}


def drain_phase(svc: Services, now: datetime, cutoff: datetime) -> dict:
    drained = drain_spool(svc, now)
    return {"spool_drained": drained.stored, "spool_dead_lettered": drained.dead_lettered}


def inbox_phase(svc: Services, now: datetime, cutoff: datetime) -> dict:
    """Kick a drain for each lane whose oldest kept delivery waited past the grace
    period: its kick was lost (Redis down or flushed when the webhook came)."""
    kicked = []
    for lane, kept in inbox.waiting().items():
        if kept.oldest is not None and kept.oldest < cutoff:
            inbox.kick(svc, lane, force=True)
            kicked.append(str(lane))
    return {"inbox_lanes_kicked": kicked}


def stranded_phase(svc: Services, now: datetime, cutoff: datetime) -> dict:
    stranded = claims.find_stranded_messages(now, svc.settings.sweep_interval_seconds)
    # Kick even when a trigger key says a job is pending: that job may be lost.
    for queue in dict.fromkeys(q for _, q in stranded):
        dispatch.kick(svc.queues, queue, force=True)
    return {"messages_requeued": len(stranded)}


def receipts_phase(svc: Services, now: datetime, cutoff: datetime) -> dict:
    receipts = left_undone(StatusEvent.applied, StatusEvent.received_at, cutoff)
    if receipts:
        svc.queues["statuses"].enqueue(APPLY_JOB, receipts, result_ttl=0)
    return {"receipts_requeued": len(receipts)}


def inbound_phase(svc: Services, now: datetime, cutoff: datetime) -> dict:
    unanswered = left_undone(InboundMessage.handled, InboundMessage.received_at, cutoff)
    if unanswered:
        svc.queues["orders"].enqueue(HANDLE_JOB, unanswered, result_ttl=0)
    return {"inbound_requeued": len(unanswered)}


def crm_phase(svc: Services, now: datetime, cutoff: datetime) -> dict:
    webhooks = crm.stranded_delivery_ids(cutoff)
    crm.enqueue(svc.queues, webhooks)
    return {"crm_webhooks_requeued": len(webhooks)}


def campaigns_phase(svc: Services, now: datetime, cutoff: datetime) -> dict:
    """Campaigns whose last messages were settled by a receipt or an admin are done."""
    return {"campaigns_done": campaigns.finish_settled(now)}


#: The sweep's phases, in order; each is independent of the others.
PHASES: tuple[tuple[str, Callable[[Services, datetime, datetime], dict]], ...] = (
    ("spool", drain_phase),
    ("inbox", inbox_phase),
    ("stranded_messages", stranded_phase),
    ("receipts", receipts_phase),
    ("inbound", inbound_phase),
    ("crm_webhooks", crm_phase),
    ("campaigns", campaigns_phase),
)


def left_undone(done, received_at, older_than: datetime, limit: int = 5000) -> list[int]:
    """Ids of rows stored but never processed (`done` still false) for longer than the
    grace period: their job was lost. One query shape for receipts and customer messages."""
    model = done.model
    query = (
        model.select(model.id)
        .where((done == False) & (received_at < older_than))  # noqa: E712 (peewee expression)
        .order_by(model.id)
        .limit(limit)
    )
    return [row.id for row in query]


@click.command("sweep")
def sweep_command() -> None:
    """Re-enqueue stranded messages, apply stray receipts and drain the spool, once."""
    click.echo(json.dumps(sweep_once(services(), utcnow())))
