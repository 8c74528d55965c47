"""Admin API: the unhandled updates, the parts of signed WhatsApp webhooks Dakiya could
not read or does not act on, each kept raw with the reason (bot/delivery/unhandled.py)."""

from __future__ import annotations

from flask import jsonify
from marshmallow import Schema, fields, validate

from bot.core.models import UnhandledUpdate
from bot.delivery.providers.base import Unhandled
from bot.web.admin import bp
from bot.web.admin.api import dump, utc_naive, where_equal
from bot.web.contract import PageQuery, UtcDateTime, endpoint, page


class UnhandledQuery(PageQuery):
    provider = fields.String(validate=validate.OneOf(["meta", "interakt"]))
    reason = fields.String(validate=validate.OneOf([r.value for r in Unhandled]))
    since = UtcDateTime(metadata={"description": "received at or after"})


class UnhandledOut(Schema):
    id = fields.Integer()
    provider = fields.String()
    kind = fields.String(metadata={"description": 'e.g. "message", "change:<field>"'})
    reason = fields.String(metadata={"description": "why it was not acted on"})
    detail = fields.String(metadata={"description": "what was wrong, and where"})
    location = fields.String(metadata={"description": "its place in the body"})
    phone = fields.String(allow_none=True, metadata={"description": "the customer it names"})
    payload = fields.Raw(
        allow_none=True, metadata={"description": "as the provider sent it (null once redacted)"}
    )
    received_at = UtcDateTime()


class UnhandledPage(Schema):
    items = fields.List(fields.Nested(UnhandledOut))
    next_after = fields.Integer(allow_none=True)


@bp.get("/api/unhandled-updates")
@endpoint(tag="unhandled updates", query=UnhandledQuery, response=UnhandledPage)
def list_unhandled_updates(query: dict):
    """What WhatsApp sent that Dakiya did not act on, by provider, reason and time.

    Each is a part of a correctly signed delivery (a message, a receipt, a change of a
    field Dakiya does not use, ...) kept as it came: the rest of its delivery was stored
    and answered 200.
    """
    rows = where_equal(
        UnhandledUpdate.select(),
        query,
        provider=UnhandledUpdate.provider,
        reason=UnhandledUpdate.reason,
    )
    if "since" in query:
        rows = rows.where(UnhandledUpdate.received_at >= utc_naive(query["since"]))
    items, next_after = page(rows, query["limit"], query["after"], UnhandledUpdate.id)
    return jsonify(items=dump(UnhandledOut, items, many=True), next_after=next_after)
