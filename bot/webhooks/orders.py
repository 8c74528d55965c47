"""Order webhooks: `/webhooks/orders` (generic), `/webhooks/orders/shopify`, `/woocommerce`."""

from __future__ import annotations

from flask import jsonify, request
from peewee import DatabaseError

from bot import spool
from bot.errors import ApiError
from bot.extensions import services
from bot.intake import take_order_event
from bot.models import utcnow
from bot.sources.base import Ignored, PayloadError, SignatureError
from bot.webhooks import bp

#: Senders that never redeliver: their deliveries are spooled before the database is
#: touched, so an outage delays them instead of losing them (DESIGN.md, Guarantees).
SPOOLED_SOURCES = frozenset({"woocommerce"})


@bp.post("/orders", defaults={"source_name": "generic"})
@bp.post("/orders/<source_name>")
def receive_order_event(source_name: str):
    """Accept a signed order event from a shop."""
    svc = services()
    source = svc.source(source_name)
    if source is None:
        raise ApiError(404, "unknown_source", f"no enabled order source named {source_name!r}")
    body = request.get_data()
    try:
        source.verify(body, request.headers)
        parsed = source.parse(body, request.headers)
    except SignatureError as exc:
        raise ApiError(401, "bad_signature", str(exc)) from exc
    except PayloadError as exc:
        raise ApiError(400, "invalid_payload", exc.message, exc.fields) from exc
    if isinstance(parsed, Ignored):
        return jsonify(ignored=parsed.reason), 200
    entry = None
    if source_name in SPOOLED_SOURCES:
        entry = spool.put(svc.redis, f"order:{source_name}", body, dict(request.headers))
    try:
        accepted = take_order_event(svc, parsed, utcnow())
    except DatabaseError:
        if entry is None:
            raise
        return jsonify(spooled=True), 202
    spool.remove(svc.redis, entry)
    return jsonify(accepted.as_json()), 202 if accepted.created else 200
