"""The sandbox provider: sends to nobody, keeps what it would have sent, and plays back
sent / delivered / read receipts through the same status path as a real provider.

It is a product feature (local runs, demos, staging), not a test double. A number ending
in 0000 is treated as "not on WhatsApp" so the failure path can be seen too.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import asdict
from datetime import timedelta

from bot.core import phones
from bot.core.models import utcnow
from bot.delivery.providers.base import (
    ErrorKind,
    OutboundMessage,
    Provider,
    ProviderError,
    SendResult,
)

log = logging.getLogger(__name__)

OUTBOX_KEY = "dakiya:sandbox:outbox"
OUTBOX_LENGTH = 1000
RECEIPT_JOB = "jobs.statuses.apply_sandbox_receipt"


class SandboxProvider(Provider):
    name = "sandbox"

    def __init__(self, settings, session=None, *, redis=None, queue=None) -> None:
        super().__init__(settings, session)
        self.redis = redis
        self.queue = queue

    def send(self, message: OutboundMessage) -> SendResult:
        if message.to.endswith("0000"):
            raise ProviderError(
                "Message undeliverable (sandbox: numbers ending in 0000 are not on WhatsApp)",
                kind=ErrorKind.PERMANENT,
                code="131026",
            )
        provider_id = f"sandbox.{uuid.uuid4().hex}"
        record = {"id": provider_id, "at": utcnow().isoformat(), **asdict(message)}
        self.redis.lpush(OUTBOX_KEY, json.dumps(record, ensure_ascii=False))
        self.redis.ltrim(OUTBOX_KEY, 0, OUTBOX_LENGTH - 1)
        what = message.template.name if message.template else "text"
        log.info("SANDBOX would send %s to %s (%s)", what, phones.mask(message.to), provider_id)
        delay = self.settings.sandbox_receipt_delay_seconds
        for step, status in enumerate(("sent", "delivered", "read")):
            self.queue.enqueue_in(
                timedelta(seconds=delay * step),
                RECEIPT_JOB,
                provider_id,
                message.callback_data,
                message.to,
                status,
                result_ttl=0,
            )
        return SendResult(provider_message_id=provider_id)

    def verify_webhook(self, body: bytes, headers) -> bool:
        return False  # the sandbox has no webhook: its receipts arrive as jobs

    def parse_webhook(self, payload: dict) -> list:
        return []


def recorded(redis, limit: int = 100) -> list[dict]:
    """What the sandbox would have sent, newest first."""
    return [json.loads(item) for item in redis.lrange(OUTBOX_KEY, 0, limit - 1)]
