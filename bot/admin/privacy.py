"""Admin API routes for customers' data requests (export, erasure) and the audit log."""

from __future__ import annotations

from flask import jsonify, request

from bot import privacy
from bot.admin import bp
from bot.auth import actor
from bot.errors import ApiError
from bot.extensions import services
from bot.models import AuditLog, utcnow
from bot.phones import to_e164

MAX_AUDIT_ENTRIES = 500


@bp.get("/api/customers/<phone>/export")
def export_customer(phone: str):
    """Everything held about one number, as JSON (a subject access request)."""
    e164 = _e164(phone)
    data = privacy.export_customer(e164)
    if data is None:
        raise ApiError(404, "not_found", "nothing is held about this number")
    counts = {name: len(rows) for name, rows in data.items() if isinstance(rows, list)}
    subject = privacy.suppression_hash(e164, services().settings.suppression_salt)
    privacy.audit(actor(), "export", subject, counts, utcnow())
    return jsonify(data)


@bp.delete("/api/customers/<phone>")
def erase_customer(phone: str):
    """Erase everything held about one number and never message it again."""
    e164 = _e164(phone)
    result = privacy.erase_customer(e164, services().settings.suppression_salt, actor(), utcnow())
    return jsonify(result)


@bp.get("/api/audit-log")
def audit_log():
    """Data exports and erasures, newest first (?limit=1..500, default 50)."""
    raw = request.args.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_AUDIT_ENTRIES:
        raise ApiError(
            400,
            "invalid_parameter",
            f"limit must be a whole number from 1 to {MAX_AUDIT_ENTRIES}",
            {"limit": [f"1..{MAX_AUDIT_ENTRIES}"]},
        )
    entries = AuditLog.select().order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
    return jsonify(entries=[audit_json(entry) for entry in entries.limit(int(raw))])


def audit_json(entry: AuditLog) -> dict:
    return {
        "id": entry.id,
        "actor": entry.actor,
        "action": entry.action,
        "subject": entry.subject,
        "details": entry.details,
        "created_at": privacy.iso(entry.created_at),
    }


def _e164(raw: str) -> str:
    """The path's number in E.164: with or without its '+', else in DEFAULT_REGION."""
    raw = raw.strip()
    if raw.startswith("+"):
        e164 = to_e164(raw, None)
    else:
        e164 = to_e164("+" + raw, None) or to_e164(raw, services().settings.default_region)
    if e164 is None:
        raise ApiError(
            400,
            "invalid_parameter",
            "phone must be a valid number in E.164 (+ and country code)",
            {"phone": ["Not a valid phone number."]},
        )
    return e164
