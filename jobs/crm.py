"""CRM webhook delivery jobs."""

from __future__ import annotations

from bot.core.models import db, utcnow
from bot.extensions import services
from bot.integrations import crm


def deliver(delivery_id: int) -> str:
    """RQ entry point: one attempt at one CRM webhook delivery."""
    with db.connection_context():
        svc = services()
        return crm.deliver_once(svc.settings, svc.queues, delivery_id, utcnow())
