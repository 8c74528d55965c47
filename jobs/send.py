"""Send jobs."""

from __future__ import annotations

from bot import dispatch
from bot.extensions import services
from bot.models import db, utcnow


def send_due(queue: str = "orders") -> dict[str, int]:
    """RQ entry point: claim and send due messages in batches (bot/dispatch.py); what
    happened to them, by outcome."""
    svc = services()
    with db.connection_context():
        return dispatch.drain(svc.sender, svc.queues, queue, svc.settings.send_job_seconds)


def send_message(message_id: int) -> str:
    """RQ entry point: try to send one message once (a retry, or the naive path)."""
    with db.connection_context():
        return services().sender().send_one(message_id, utcnow())
