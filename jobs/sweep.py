"""The periodic sweep: whatever Redis lost or a dead worker dropped, picked up again."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot import crm, outbox, statuses
from bot.extensions import Services, services
from bot.intake import APPLY_JOB, HANDLE_JOB, drain_spool
from bot.models import InboundMessage, db, utcnow

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
        stranded = outbox.find_stranded_messages(now, grace)
        enqueued = outbox.enqueue_sends(svc.queues, stranded)
        receipts = statuses.unapplied_event_ids(now - timedelta(seconds=grace))
        unanswered = unhandled_inbound_ids(now - timedelta(seconds=grace))
        webhooks = crm.stranded_delivery_ids(now - timedelta(seconds=grace))
    if receipts:
        svc.queues["statuses"].enqueue(APPLY_JOB, receipts, result_ttl=0)
    if unanswered:
        svc.queues["orders"].enqueue(HANDLE_JOB, unanswered, result_ttl=0)
    crm.enqueue(webhooks)
    result = {
        "spool_drained": drained,
        "messages_requeued": enqueued,
        "receipts_requeued": len(receipts),
        "inbound_requeued": len(unanswered),
        "crm_webhooks_requeued": len(webhooks),
    }
    if any(result.values()):
        log.info("sweep: %s", result)
    return result


def unhandled_inbound_ids(older_than: datetime, limit: int = 5000) -> list[int]:
    """Customer messages stored but never answered (their job was lost)."""
    query = (
        InboundMessage.select(InboundMessage.id)
        .where((InboundMessage.handled == False) & (InboundMessage.received_at < older_than))  # noqa: E712
        .order_by(InboundMessage.id)
        .limit(limit)
    )
    return [m.id for m in query]
