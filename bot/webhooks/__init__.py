"""Inbound webhooks: order events from shops, receipts and replies from WhatsApp.

Handlers are thin: verify the signature, parse, hand over to `bot.intake`, answer.
"""

from __future__ import annotations

from flask import Blueprint

from bot.extensions import limiter, services

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
# Generous: shops and WhatsApp burst (a festival sale, a campaign's receipts).
limiter.limit(lambda: services().settings.webhook_rate_limit)(bp)

from bot.webhooks import orders, whatsapp  # noqa: E402,F401  (registers the routes)
