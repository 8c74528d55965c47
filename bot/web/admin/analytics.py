"""Admin API: message analytics per day, template, language, order source or category,
read from the daily rollups (`bot.observability.analytics`)."""

from __future__ import annotations

from datetime import timedelta

from flask import jsonify
from marshmallow import Schema, ValidationError, fields, post_load, validate

from bot.core.models import utcnow
from bot.observability import analytics
from bot.web.admin import bp
from bot.web.contract import endpoint

MAX_DAYS = 366
#: The range when the query gives none: the last 14 days, today (UTC) included.
DEFAULT_DAYS = 14


class AnalyticsQuery(Schema):
    start = fields.Date(
        data_key="from",
        metadata={
            "description": f"first day (UTC), YYYY-MM-DD; default: {DEFAULT_DAYS - 1} days"
            " before `to`",
            "example": "2026-11-01",
        },
    )
    end = fields.Date(
        data_key="to",
        metadata={
            "description": "last day (UTC), inclusive; default: today (UTC)",
            "example": "2026-11-30",
        },
    )
    group_by = fields.String(load_default="day", validate=validate.OneOf(analytics.GROUP_BY))

    @post_load
    def default_and_check_range(self, data: dict, **kwargs) -> dict:
        """No range is the last 14 days; `to` alone ends such a range, `from` alone runs
        to today."""
        data.setdefault("end", utcnow().date())
        data.setdefault("start", data["end"] - timedelta(days=DEFAULT_DAYS - 1))
        if data["end"] < data["start"]:
            raise ValidationError("must not be before from", "to")
        if (data["end"] - data["start"]).days + 1 > MAX_DAYS:
            raise ValidationError(f"at most {MAX_DAYS} days after from", "to")
        return data


class Counts(Schema):
    messages = fields.Integer()
    sent = fields.Integer(metadata={"description": "reached sent or later"})
    delivered = fields.Integer(metadata={"description": "delivered or read"})
    read = fields.Integer()
    failed = fields.Integer()
    suppressed = fields.Integer()
    delivery_rate = fields.Float(allow_none=True, metadata={"description": "delivered / sent"})
    read_rate = fields.Float(allow_none=True, metadata={"description": "read / delivered"})
    replied_24h = fields.Integer(metadata={"description": "customer wrote within 24 h"})
    opted_out_7d = fields.Integer(metadata={"description": "customer opted out within 7 days"})
    failed_by_code = fields.Dict(keys=fields.String(), values=fields.Integer())
    suppressed_by_reason = fields.Dict(keys=fields.String(), values=fields.Integer())
    delivery_seconds_median = fields.Float(allow_none=True)
    read_seconds_median = fields.Float(allow_none=True)


class Row(Counts):
    key = fields.String(metadata={"description": "the day, template, language, ... ('' = none)"})


class AnalyticsOut(Schema):
    rows = fields.List(fields.Nested(Row))
    totals = fields.Nested(Counts)


@bp.get("/api/analytics")
@endpoint(tag="analytics", query=AnalyticsQuery, response=AnalyticsOut)
def show_analytics(query: dict):
    """Sent, delivered, read, failed, replies and opt-outs over a range of days (the last
    14 days, today included, when the query gives no range)."""
    return jsonify(analytics.summary(query["start"], query["end"], query["group_by"]))
