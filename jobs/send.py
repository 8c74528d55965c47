"""Send jobs."""

from __future__ import annotations

from bot.extensions import services
from bot.models import db, utcnow


def send_message(message_id: int) -> str:
    """RQ entry point: try to send one queued message once."""
    with db.connection_context():
        return services().sender().send_one(message_id, utcnow())
