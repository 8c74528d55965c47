"""Admin API routes for customers' data requests (export, erasure) and the audit log."""

from __future__ import annotations

from flask import jsonify
from marshmallow import INCLUDE, Schema, fields, validate

from bot.core.audit import audit
from bot.core.errors import ApiError
from bot.core.models import AuditLog, utcnow
from bot.core.phones import is_bsuid, to_e164
from bot.extensions import services
from bot.policy import privacy
from bot.web.admin import bp
from bot.web.auth import actor, may_export
from bot.web.contract import MAX_ID, endpoint

MAX_AUDIT_ENTRIES = 100


class DataExport(Schema):
    """Everything held about one number: customer, consent, orders, messages, receipts."""

    class Meta:
        unknown = INCLUDE


class ErasureResult(Schema):
    class Meta:
        unknown = INCLUDE


class AuditQuery(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, MAX_AUDIT_ENTRIES))
    before = fields.Integer(
        validate=validate.Range(1, MAX_ID), metadata={"description": "older than this id"}
    )


class AuditEntry(Schema):
    id = fields.Integer()
    actor = fields.String()
    action = fields.String()
    subject = fields.String(allow_none=True)
    details = fields.Raw(allow_none=True)
    created_at = fields.String()


class AuditPage(Schema):
    entries = fields.List(fields.Nested(AuditEntry))
    next_before = fields.Integer(allow_none=True)


#: The documented `{phone}`: E.164, or as typed (URL-encoded).
A_NUMBER = {"phone": "+919812345601"}


@bp.get("/api/customers/<phone>/export")
@may_export
@endpoint(tag="privacy", response=DataExport, errors=(400, 404), path_examples=A_NUMBER)
def export_customer(phone: str):
    """Everything held about one number or WhatsApp BSUID, as JSON (a subject access
    request; admins only)."""
    key = _subject(phone)
    data = privacy.export_customer(key)
    if data is None:
        raise ApiError(404, "not_found", "nothing is held about this number")
    counts = {name: len(rows) for name, rows in data.items() if isinstance(rows, list)}
    subject = privacy.suppression_hash(key, services().settings.suppression_salt)
    audit(actor(), "export", subject, counts, utcnow())
    return jsonify(data)


@bp.delete("/api/customers/<phone>")
@endpoint(tag="privacy", response=ErasureResult, errors=(400,), path_examples=A_NUMBER)
def erase_customer(phone: str):
    """Erase everything held about one number or WhatsApp BSUID and never message it
    again."""
    key = _subject(phone)
    result = privacy.erase_customer(key, services().settings.suppression_salt, actor(), utcnow())
    return jsonify(result)


@bp.get("/api/audit-log")
@endpoint(tag="privacy", query=AuditQuery, response=AuditPage)
def audit_log(query: dict):
    """Every admin action, newest first (exports, erasures, changes with before/after)."""
    entries = AuditLog.select().order_by(AuditLog.id.desc())
    if "before" in query:
        entries = entries.where(AuditLog.id < query["before"])
    rows = list(entries.limit(query["limit"] + 1))
    more = len(rows) > query["limit"]
    rows = rows[: query["limit"]]
    return jsonify(entries=[audit_json(e) for e in rows], next_before=rows[-1].id if more else None)


def audit_json(entry: AuditLog) -> dict:
    return {
        "id": entry.id,
        "actor": entry.actor,
        "action": entry.action,
        "subject": entry.subject,
        "details": entry.details,
        "created_at": privacy.iso(entry.created_at),
    }


def _subject(raw: str) -> str:
    """The path's BSUID ("IN.1234…", a customer who writes by username), or its number
    in E.164: with or without its '+', else in DEFAULT_REGION."""
    raw = raw.strip()
    if is_bsuid(raw):
        return raw
    if raw.startswith("+"):
        e164 = to_e164(raw, None)
    else:
        e164 = to_e164("+" + raw, None) or to_e164(raw, services().settings.default_region)
    if e164 is None:
        raise ApiError(
            400,
            "invalid_parameter",
            "phone must be a valid number in E.164 (+ and country code) or a WhatsApp BSUID",
            {"phone": ["Not a valid phone number or BSUID."]},
        )
    return e164
