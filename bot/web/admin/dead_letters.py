"""Admin API for the spool's dead letters (bot/intake/dead_letters.py): list them, retry one
once its cause is fixed, or discard it. Viewers may list; retry and discard are writes
(admins only, the write guard of `bot.web.auth`), and both are audited."""

from __future__ import annotations

from flask import jsonify
from marshmallow import Schema, fields

from bot.core.audit import audit
from bot.core.errors import ApiError, is_outage
from bot.core.models import SpoolDeadLetter, utcnow
from bot.extensions import services
from bot.intake import dead_letters
from bot.intake.intake import take_spooled
from bot.web.admin import bp
from bot.web.admin.api import get_or_404
from bot.web.auth import actor
from bot.web.contract import PageQuery, UtcDateTime, endpoint, page


class DeadLetterOut(Schema):
    id = fields.Integer()
    spool_id = fields.String(metadata={"description": "the spool (Redis stream) entry id"})
    kind = fields.String(metadata={"description": '"order:<source>" or "whatsapp:<provider>"'})
    error = fields.String(metadata={"description": "why it could not be stored"})
    attempts = fields.Integer(metadata={"description": "1 + the retries that failed"})
    body_bytes = fields.Function(
        lambda row: len(bytes(row.body)), metadata={"description": "size of the kept body"}
    )
    spooled_at = UtcDateTime()
    failed_at = UtcDateTime()


class DeadLetterPage(Schema):
    items = fields.List(fields.Nested(DeadLetterOut))
    next_after = fields.Integer(allow_none=True)


class RetriedOut(Schema):
    retried = fields.Integer(metadata={"description": "the dead letter, now stored and gone"})


class DeletedOut(Schema):
    deleted = fields.List(fields.Integer())


@bp.get("/api/spool/dead-letters")
@endpoint(tag="operations", query=PageQuery, response=DeadLetterPage)
def list_dead_letters(query: dict):
    """Spooled deliveries that could not be stored, oldest first (bodies are not shown:
    they hold customers' details)."""
    rows, next_after = page(
        SpoolDeadLetter.select(), query["limit"], query["after"], SpoolDeadLetter.id
    )
    return jsonify(items=DeadLetterOut().dump(rows, many=True), next_after=next_after)


@bp.post("/api/spool/dead-letters/<int:letter_id>/retry")
@endpoint(tag="operations", response=RetriedOut, errors=(404, 409, 503))
def retry_dead_letter(letter_id: int):
    """Process a dead letter again, as its webhook would have; stored, it is removed.

    409 when it fails again (its error and attempts are updated); 503 while the
    database is unavailable (it stays)."""
    row = get_or_404(SpoolDeadLetter, letter_id)
    now = utcnow()
    try:
        take_spooled(services(), dead_letters.as_entry(row), now)
    except Exception as exc:
        if is_outage(exc):
            raise
        dead_letters.failed_again(row, exc, now)
        audit(actor(), "retry_dead_letter", str(letter_id), {"kind": row.kind, "ok": False}, now)
        raise ApiError(409, "retry_failed", row.error) from exc
    row.delete_instance()
    audit(actor(), "retry_dead_letter", str(letter_id), {"kind": row.kind, "ok": True}, now)
    return jsonify(retried=letter_id)


@bp.delete("/api/spool/dead-letters/<int:letter_id>")
@endpoint(tag="operations", response=DeletedOut, errors=(404,))
def discard_dead_letter(letter_id: int):
    """Forget a dead letter for good (the delivery is never stored)."""
    row = get_or_404(SpoolDeadLetter, letter_id)
    row.delete_instance()
    details = {"kind": row.kind, "spool_id": row.spool_id, "error": row.error}
    audit(actor(), "discard_dead_letter", str(letter_id), details, utcnow())
    return jsonify(deleted=[letter_id])
