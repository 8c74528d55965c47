"""The sandbox provider: sends to nobody, keeps what it would have sent, and plays back
sent / delivered / read receipts through the same status path as a real provider.

It is a product feature (local runs, demos, staging), not a test double. Numbers ending
in a trigger (`TRIGGERS`, like Twilio's magic numbers) fail with each error class the
sender knows, so every failure path (a retry, a slow-down, a dead letter, a hold for
reconciliation) can be seen locally; the README lists them.
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


#: A number's last four digits -> the failure the sandbox answers with, every time.
#: Each is one error class of the sender (ErrorKind), with a Meta-like code.
TRIGGERS: dict[str, tuple[ErrorKind, str, str]] = {
    "0000": (
        ErrorKind.PERMANENT,
        "131026",
        "Message undeliverable (sandbox: numbers ending in 0000 are not on WhatsApp)",
    ),
    "0500": (
        ErrorKind.RETRY,
        "131000",
        "Service temporarily unavailable (sandbox: numbers ending in 0500 always fail"
        " and are retried until they are a dead letter)",
    ),
    "0429": (
        ErrorKind.RATE_LIMITED,
        "130429",
        "Rate limit hit (sandbox: numbers ending in 0429 are always rate limited)",
    ),
    "0504": (
        ErrorKind.AMBIGUOUS,
        "timeout",
        "No answer in time (sandbox: numbers ending in 0504 may or may not have been sent)",
    ),
}
#: The Retry-After of a rate-limited sandbox send, in seconds.
RATE_LIMIT_RETRY_AFTER = 30.0


class SandboxProvider(Provider):
    name = "sandbox"

    def __init__(self, settings, session=None, *, redis=None, queue=None) -> None:
        super().__init__(settings, session)
        self.redis = redis
        self.queue = queue

    def send(self, message: OutboundMessage) -> SendResult:
        trigger = TRIGGERS.get((message.to or "")[-4:])
        if trigger:
            kind, code, text = trigger
            retry_after = RATE_LIMIT_RETRY_AFTER if kind is ErrorKind.RATE_LIMITED else None
            raise ProviderError(text, kind=kind, code=code, retry_after=retry_after)
        provider_id = f"sandbox.{uuid.uuid4().hex}"
        record = {"id": provider_id, "at": utcnow().isoformat(), **asdict(message)}
        self.redis.lpush(OUTBOX_KEY, json.dumps(record, ensure_ascii=False))
        self.redis.ltrim(OUTBOX_KEY, 0, OUTBOX_LENGTH - 1)
        what = message.template.name if message.template else "text"
        log.info("SANDBOX would send %s to %s (%s)", what, phones.mask(message.to), provider_id)
        delay = self.settings.sandbox_receipt_delay_seconds
        priced = sandbox_pricing(message)
        for step, status in enumerate(("sent", "delivered", "read")):
            self.queue.enqueue_in(
                timedelta(seconds=delay * step),
                RECEIPT_JOB,
                provider_id,
                message.callback_data,
                message.to,
                status,
                # Like Meta (§9.2): pricing on `sent` and on `delivered`, not on `read`.
                priced if status != "read" else None,
                result_ttl=0,
            )
        return SendResult(provider_message_id=provider_id)

    def verify_webhook(self, body: bytes, headers) -> bool:
        return False  # the sandbox has no webhook: its receipts arrive as jobs

    def parse_webhook(self, payload: dict) -> list:
        return []


def sandbox_pricing(message: OutboundMessage) -> dict:
    """The `pricing` the sandbox's receipts carry, as Meta's would since 2025-07-01: a
    template is billed by its category, a reply (text) is free customer service. (Meta
    also makes a utility template inside the service window free; the sandbox does not
    know the window and bills it.)"""
    if message.template is None:
        return {"billable": False, "category": "service", "type": "free_customer_service"}
    return {"billable": True, "category": message.category or "utility", "type": "regular"}


def recorded(redis, limit: int = 100) -> list[dict]:
    """What the sandbox would have sent, newest first."""
    return [json.loads(item) for item in redis.lrange(OUTBOX_KEY, 0, limit - 1)]
