"""Inbound webhooks: order events from shops, receipts and replies from WhatsApp.

Handlers are thin: verify the signature, parse, hand over to `bot.intake.intake`, answer.
"""

from __future__ import annotations

import time

from flask import Blueprint, g, request

from bot.core import telemetry
from bot.extensions import limiter, services

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
# Generous: shops and WhatsApp burst (a festival sale, a campaign's receipts).
limiter.limit(lambda: services().settings.webhook_rate_limit)(bp)


@bp.before_request
def _start_clock() -> None:
    g.webhook_started = time.perf_counter()


@bp.after_request
def _record_request(response):
    """Count every webhook request and time it (per route, never per raw path)."""
    rule = request.url_rule.rule if request.url_rule and response.status_code != 404 else "unknown"
    endpoint = (
        rule.replace("<source_name>", request.view_args.get("source_name", "")).replace(
            "<provider_name>", request.view_args.get("provider_name", "")
        )
        if request.view_args
        else rule
    )
    conn = services().redis
    telemetry.count(
        conn, "webhook_requests", {"endpoint": endpoint, "status": str(response.status_code)}
    )
    started = g.get("webhook_started")
    if started is not None:
        telemetry.observe(
            conn, "webhook_seconds", {"endpoint": endpoint}, time.perf_counter() - started
        )
    return response


from bot.web.webhooks import orders, whatsapp  # noqa: E402,F401  (registers the routes)
