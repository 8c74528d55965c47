"""Inbound webhooks: order events from shops, receipts and replies from WhatsApp.

Handlers are thin: verify the signature, parse, hand over to `bot.intake.intake`, answer.
"""

from __future__ import annotations

import time

from flask import Blueprint, g, request
from limits import parse

from bot.core import telemetry
from bot.core.errors import ApiError
from bot.extensions import client_address, limiter, services

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
# A correctly signed delivery is never turned away for its rate (a campaign's receipts
# come in thousands a second), and checking a moving window in Redis for each one was a
# third of the request's cost (issue 19): only deliveries whose signature fails count,
# per address, against WEBHOOK_RATE_LIMIT (`bad_signature`).
limiter.exempt(bp)


def bad_signature(message: str) -> ApiError:
    """The 401 for a delivery that is not signed by its sender; a 429 with Retry-After
    once the address has sent more than WEBHOOK_RATE_LIMIT of them."""
    return counted_refusal(ApiError(401, "bad_signature", message))


def counted_refusal(error: ApiError) -> ApiError:
    """`error`, counted per address against WEBHOOK_RATE_LIMIT with every other failed
    signature or verify token: past the limit, a 429 with Retry-After instead (no one
    guesses a secret at the speed of the webhooks, which are not limited otherwise)."""
    item = parse(services().settings.webhook_rate_limit)
    if not limiter.limiter.hit(item, "webhooks-bad-signature", client_address()):
        headers = {"Retry-After": str(item.get_expiry())}
        return ApiError(429, "too_many_requests", "too many badly signed webhooks", None, headers)
    return error


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
    # Buffered in this process and written once a second (telemetry.Buffer): no Redis
    # round trip per request on the hottest path.
    conn = services().redis
    labels = {"endpoint": endpoint, "status": str(response.status_code)}
    telemetry.WEBHOOKS.count(conn, "webhook_requests", labels)
    started = g.get("webhook_started")
    if started is not None:
        elapsed = time.perf_counter() - started
        telemetry.WEBHOOKS.observe(conn, "webhook_seconds", {"endpoint": endpoint}, elapsed)
    return response


from bot.web.webhooks import orders, whatsapp  # noqa: E402,F401  (registers the routes)
