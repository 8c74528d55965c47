"""Inbound webhooks: order events from shops, receipts and replies from WhatsApp.

Handlers are thin: verify the signature, parse, hand over to `bot.intake`, answer.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

from bot.webhooks import orders, whatsapp  # noqa: E402,F401  (registers the routes)
