"""WhatsApp webhooks: Meta's verification handshake, and receipts and customer messages
from Meta (`/webhooks/whatsapp/meta`) and Interakt (`/webhooks/whatsapp/interakt`)."""

from __future__ import annotations

import hmac

from flask import jsonify, request

from bot.core.errors import ApiError
from bot.core.jsonbody import decode_json
from bot.core.models import utcnow
from bot.extensions import services
from bot.intake import inbox
from bot.intake.inbox import Lane
from bot.intake.intake import SPOOLED
from bot.observability.alerts import record_signature_failure
from bot.web.webhooks import bad_signature, bp, counted_refusal

WEBHOOK_PROVIDERS = frozenset({"meta", "interakt"})
#: Interakt never redelivers and disables a webhook that fails 5 times: spooled when
#: the database cannot keep a delivery.
SPOOLED_PROVIDERS = frozenset({"interakt"})


@bp.get("/whatsapp/meta")
def verify_meta_subscription():
    """Meta's subscription handshake: echo hub.challenge when the verify token matches."""
    token = services().settings.meta_verify_token
    given = request.args.get("hub.verify_token", "")
    if not token:
        raise ApiError(
            403,
            "verification_failed",
            "META_VERIFY_TOKEN is not configured: set it to the verify token given to Meta",
        )
    if request.args.get("hub.mode") != "subscribe":
        raise ApiError(403, "verification_failed", "hub.mode must be subscribe")
    if not hmac.compare_digest(given.encode(), token.encode()):
        wrong = ApiError(403, "verification_failed", "hub.verify_token does not match")
        raise counted_refusal(wrong)  # a guessed token counts like a forged signature
    return request.args.get("hub.challenge", ""), 200, {"Content-Type": "text/plain"}


@bp.post("/whatsapp/<provider_name>")
def receive_whatsapp_update(provider_name: str):
    """Accept delivery receipts and customer messages from a WhatsApp provider."""
    if provider_name not in WEBHOOK_PROVIDERS:
        raise ApiError(404, "unknown_provider", f"no WhatsApp provider named {provider_name!r}")
    svc = services()
    provider = svc.webhook_provider(provider_name)
    body = request.get_data()
    if not provider.verify_webhook(body, request.headers):
        record_signature_failure(svc.redis, f"whatsapp:{provider_name}")
        raise bad_signature("missing or invalid webhook signature")
    try:
        payload = decode_json(body)
    except ValueError as exc:  # not JSON (or nested past any sender's depth): refused
        raise ApiError(400, "invalid_payload", f"the body is not JSON: {exc}") from exc
    # Whatever the JSON holds, a signed delivery is taken: kept raw here, parsed by a
    # worker (bot/intake/inbox.py), where what cannot be read is stored as unhandled.
    lane = Lane.RECEIPTS if provider.receipts_only(payload) else Lane.INBOUND
    kept = inbox.keep(
        svc,
        f"whatsapp:{provider_name}",
        lane,
        body,
        utcnow(),
        spooled=provider_name in SPOOLED_PROVIDERS,
    )
    if kept is SPOOLED:
        return jsonify(spooled=True), 200
    return jsonify(accepted=True), 200
