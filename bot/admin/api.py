"""Admin API routes: messages (with their reason codes) and conversations handed to a person."""

from __future__ import annotations

from flask import jsonify, request

from bot.admin import bp
from bot.errors import ApiError
from bot.extensions import services
from bot.models import Customer, InboundMessage, Message, db, utcnow
from bot.sending import retry_failed_message

RECENT = 20


def message_json(message: Message) -> dict:
    return {
        "id": message.id,
        "phone": message.phone,
        "kind": message.kind,
        "category": message.category,
        "state": message.state,
        "reason": message.reason,
        "template": message.template_name,
        "language": message.language,
        "text": message.text,
        "attempts": message.attempts,
        "provider": message.provider,
        "provider_message_id": message.provider_message_id,
        "error_code": message.error_code,
        "error_text": message.error_text,
        "created_at": _iso(message.created_at),
        "sent_at": _iso(message.sent_at),
        "delivered_at": _iso(message.delivered_at),
        "read_at": _iso(message.read_at),
        "failed_at": _iso(message.failed_at),
        "next_attempt_at": _iso(message.next_attempt_at),
    }


def _iso(value) -> str | None:
    return value.isoformat() + "Z" if value else None


@bp.get("/api/messages/<int:message_id>")
def show_message(message_id: int):
    """One message with its state, reason code, attempts and provider error."""
    message = Message.get_or_none(Message.id == message_id)
    if message is None:
        raise ApiError(404, "not_found", f"no message {message_id}")
    return jsonify(message_json(message))


@bp.post("/api/messages/<int:message_id>/retry")
def retry_message(message_id: int):
    """Send a dead-lettered (failed) message again."""
    if not retry_failed_message(message_id, services().queues, utcnow()):
        raise ApiError(409, "not_failed", f"message {message_id} is not a failed message")
    return jsonify(message_json(Message.get_by_id(message_id))), 202


@bp.get("/api/conversations")
def list_conversations():
    """Conversations flagged for a person (?flagged=true, the default), with recent messages."""
    flagged = request.args.get("flagged", "true").lower()
    if flagged not in ("true", "false"):
        raise ApiError(
            400,
            "invalid_parameter",
            "flagged must be true or false",
            {"flagged": ["true or false"]},
        )
    query = Customer.select().order_by(Customer.last_inbound_at.desc(nulls="LAST")).limit(100)
    if flagged == "true":
        query = query.where(Customer.needs_agent_since.is_null(False))
    return jsonify(conversations=[conversation_json(c) for c in query])


@bp.post("/api/conversations/<int:customer_id>/release")
def release_conversation(customer_id: int):
    """Hand the conversation back to the automatic answers."""
    with db.atomic():
        updated = (
            Customer.update(needs_agent_since=None, updated_at=utcnow())
            .where(Customer.id == customer_id)
            .execute()
        )
    if not updated:
        raise ApiError(404, "not_found", f"no customer {customer_id}")
    return jsonify(conversation_json(Customer.get_by_id(customer_id)))


def conversation_json(customer: Customer) -> dict:
    inbound = [
        {"direction": "in", "at": _iso(m.occurred_at), "text": m.text, "intent": m.intent}
        for m in customer.inbound.order_by(InboundMessage.occurred_at.desc()).limit(RECENT)
    ]
    outbound = [
        {
            "direction": "out",
            "at": _iso(m.created_at),
            "text": m.text or m.template_name,
            "state": m.state,
        }
        for m in customer.messages.order_by(Message.created_at.desc()).limit(RECENT)
    ]
    messages = sorted(inbound + outbound, key=lambda m: m["at"] or "", reverse=True)[:RECENT]
    return {
        "customer_id": customer.id,
        "phone": customer.phone,
        "name": customer.name,
        "language": customer.language,
        "needs_agent_since": _iso(customer.needs_agent_since),
        "last_inbound_at": _iso(customer.last_inbound_at),
        "messages": messages,
    }
