"""Order webhooks: `/webhooks/orders` (generic), `/webhooks/orders/shopify`, `/woocommerce`."""

from __future__ import annotations

from flask import jsonify, request

from bot.core.errors import ApiError
from bot.core.models import utcnow
from bot.extensions import services
from bot.intake.compliance import take_compliance_request
from bot.intake.intake import SPOOLED, take_durably, take_order_event
from bot.intake.shop_consent import take_consent_update
from bot.intake.sources.base import (
    ComplianceRequest,
    ConsentUpdate,
    Ignored,
    PayloadError,
    SignatureError,
)
from bot.observability.alerts import record_signature_failure
from bot.web.webhooks import bad_signature, bp

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
        record_signature_failure(svc.redis, f"orders:{source_name}")
        raise bad_signature(str(exc)) from exc
    except PayloadError as exc:
        raise ApiError(400, "invalid_payload", exc.message, exc.fields) from exc
    if isinstance(parsed, Ignored):
        return jsonify(ignored=parsed.reason), 200
    if isinstance(parsed, ConsentUpdate):
        settings = svc.settings
        answer = take_consent_update(
            parsed, settings.suppression_salt, settings.default_region, utcnow()
        )
        return jsonify(answer), 200
    if isinstance(parsed, ComplianceRequest):
        settings = svc.settings
        done = take_compliance_request(
            parsed, svc.redis, settings.suppression_salt, settings.default_region, utcnow()
        )
        return jsonify(done.as_json()), 200
    spool_kind = f"order:{source_name}" if source_name in SPOOLED_SOURCES else None
    accepted = take_durably(
        svc,
        spool_kind,
        body,
        dict(request.headers),
        lambda: take_order_event(svc, parsed, utcnow()),
    )
    if accepted is SPOOLED:
        return jsonify(spooled=True), 202
    return jsonify(accepted.as_json()), 202 if accepted.created else 200
