"""The periodic sweep: whatever Redis lost or a dead worker dropped, picked up again."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot import claims, crm, dispatch
from bot.extensions import Services, services
from bot.intake import APPLY_JOB, HANDLE_JOB, drain_spool
from bot.models import InboundMessage, StatusEvent, db, utcnow

log = logging.getLogger(__name__)

LOCK_KEY = "dakiya:sweep:lock"


def sweep() -> dict:
    """RQ entry point (run every SWEEP_INTERVAL_SECONDS by the worker's cron)."""
    svc = services()
    # One sweep at a time across all workers; a crashed sweeper's lock simply expires.
    if not svc.redis.set(LOCK_KEY, "1", nx=True, ex=max(svc.settings.sweep_interval_seconds, 5)):
        return {"skipped": True}
    try:
        return sweep_once(svc, utcnow())
    finally:
        svc.redis.delete(LOCK_KEY)


def sweep_once(svc: Services, now: datetime) -> dict:
    """Drain the spool, re-enqueue stranded messages, and apply receipts and answer
    customer messages whose jobs were lost."""
    grace = svc.settings.sweep_interval_seconds
    with db.connection_context():
        drained = drain_spool(svc, now)
        stranded = claims.find_stranded_messages(now, grace)
        cutoff = now - timedelta(seconds=grace)
        receipts = left_undone(StatusEvent.applied, StatusEvent.received_at, cutoff)
        unanswered = left_undone(InboundMessage.handled, InboundMessage.received_at, cutoff)
        webhooks = crm.stranded_delivery_ids(cutoff)
    # Kick even when a trigger key says a job is pending: that job may be lost.
    for queue in dict.fromkeys(q for _, q in stranded):
        dispatch.kick(svc.queues, queue, force=True)
    if receipts:
        svc.queues["statuses"].enqueue(APPLY_JOB, receipts, result_ttl=0)
    if unanswered:
        svc.queues["orders"].enqueue(HANDLE_JOB, unanswered, result_ttl=0)
    crm.enqueue(webhooks)
    result = {
        "spool_drained": drained,
        "messages_requeued": len(stranded),
        "receipts_requeued": len(receipts),
        "inbound_requeued": len(unanswered),
        "crm_webhooks_requeued": len(webhooks),
    }
    if any(result.values()):
        log.info("sweep: %s", result)
    return result


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
