"""Admin API: what WhatsApp cost, and the rate card it is estimated from
(`bot.observability.spend`, `bot.core.rate_card`)."""

from __future__ import annotations

from datetime import timedelta

from flask import jsonify
from marshmallow import Schema, ValidationError, fields, post_load

from bot.core import runtime
from bot.core.audit import audit
from bot.core.errors import ApiError
from bot.core.models import utcnow, write_transaction
from bot.core.rate_card import RateCard, RateCardSchema
from bot.extensions import services
from bot.observability import spend
from bot.web.admin import bp
from bot.web.auth import actor
from bot.web.contract import endpoint

MAX_DAYS = 366

CARD_EXAMPLE = {
    "currency": "INR",
    "effective": "2026-01-01",
    "source": "WhatsApp Manager > Billing, rate card downloaded 2026-01-02",
    "rates": {
        "IN": {"marketing": "0.8631", "utility": "0.1150", "authentication": "0.1150"},
        "*": {"marketing": "4.10", "utility": "1.20"},
    },
}


class SpendQuery(Schema):
    start = fields.Date(
        data_key="from",
        metadata={"description": "first day (UTC); default: the first of this month"},
    )
    end = fields.Date(
        data_key="to", metadata={"description": "last day (UTC), inclusive; default: today"}
    )

    @post_load
    def default_and_check_range(self, data: dict, **kwargs) -> dict:
        data.setdefault("end", utcnow().date())
        data.setdefault("start", spend.month_start(data["end"]))
        if data["end"] < data["start"]:
            raise ValidationError("must not be before from", "to")
        if (data["end"] - data["start"]) >= timedelta(days=MAX_DAYS):
            raise ValidationError(f"at most {MAX_DAYS} days after from", "to")
        return data


class Priced(Schema):
    billable = fields.Integer(metadata={"description": "billable and delivered"})
    free = fields.Integer(metadata={"description": "priced as free (service window, ...)"})
    unpriced = fields.Integer(metadata={"description": "billable, but the card has no rate"})
    estimated_spend = fields.String(metadata={"description": "in `currency`, to the cent"})


class PricedRow(Priced):
    key = fields.String()


class RateCardOut(RateCardSchema):
    origin = fields.String(metadata={"description": "file (RATE_CARD_FILE) or admin"})
    updated_by = fields.String(allow_none=True)
    updated_at = fields.String(allow_none=True)


class SpendOut(Schema):
    start = fields.String(data_key="from")
    end = fields.String(data_key="to")
    currency = fields.String()
    rate_card = fields.Nested(RateCardOut)
    totals = fields.Nested(Priced)
    by_day = fields.List(fields.Nested(PricedRow))
    by_category = fields.List(fields.Nested(PricedRow))
    by_template = fields.List(fields.Nested(PricedRow))
    by_country = fields.List(fields.Nested(PricedRow))


@bp.get("/api/spend")
@endpoint(tag="analytics", query=SpendQuery, response=SpendOut)
def show_spend(query: dict):
    """Billable messages and estimated spend (this month by default), per day, pricing
    category, template and country, at the rate card in force."""
    card = runtime.rate_card(services().settings.rate_card_file)
    return jsonify(spend.summary(query["start"], query["end"], card))


@bp.get("/api/rate-card")
@endpoint(tag="settings", response=RateCardOut)
def show_rate_card():
    """The rate card spend is estimated from: an admin's, else RATE_CARD_FILE's."""
    return jsonify(runtime.rate_card(services().settings.rate_card_file).as_json())


@bp.put("/api/rate-card")
@endpoint(tag="settings", body=RateCardSchema, response=RateCardOut, example=CARD_EXAMPLE)
def edit_rate_card(body: dict):
    """Replace the rate card (a whole card: currency, effective, source, rates per
    country and pricing category); estimates use it at once, the past included."""
    who, now = actor(), utcnow()
    card = RateCard(**body, origin="admin", updated_by=who, updated_at=now)
    with write_transaction():
        before = runtime.save_rate_card(card, who)
        audit(who, "edit_rate_card", None, {"before": before, "after": card.as_json()}, now)
    return jsonify(card.as_json())


@bp.delete("/api/rate-card")
@endpoint(tag="settings", response=RateCardOut, errors=(404,))
def reset_rate_card():
    """Remove the admin's rate card: RATE_CARD_FILE's is in force again (and shown)."""
    who, now = actor(), utcnow()
    with write_transaction():
        before = runtime.delete_rate_card()
        if before is None:
            raise ApiError(404, "not_found", "no admin rate card; RATE_CARD_FILE's is in force")
        audit(who, "reset_rate_card", None, {"before": before, "after": None}, now)
    return jsonify(runtime.rate_card(services().settings.rate_card_file).as_json())
