"""Admin API: segment previews and campaigns — create, list, show with progress, launch,
pause, resume, cancel. Every change is audited."""

from __future__ import annotations

from flask import jsonify
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from bot.campaigns import campaigns
from bot.campaigns.segments import SegmentSchema, preview
from bot.core.audit import audit
from bot.core.errors import ApiError
from bot.core.models import Campaign, Category, utcnow
from bot.extensions import services
from bot.web.admin import bp
from bot.web.admin.api import get_or_404
from bot.web.admin.schemas import LanguageCode
from bot.web.auth import actor
from bot.web.contract import PageQuery, UtcDateTime, endpoint, page

# --- schemas -------------------------------------------------------------------------


class ScheduleSchema(Schema):
    at = UtcDateTime(metadata={"description": "one moment for everyone (UTC if naive)"})
    local_time = fields.String(
        validate=validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$"),
        metadata={"description": "HH:MM in each customer's own time zone, on `date`"},
    )
    date = fields.Date()

    @validates_schema
    def check_one_kind(self, data: dict, **kwargs) -> None:
        if "at" in data and ("local_time" in data or "date" in data):
            raise ValidationError("give either at, or local_time and date", "at")
        if ("local_time" in data) != ("date" in data):
            raise ValidationError("local_time needs date (and date local_time)", "local_time")
        if not data:
            raise ValidationError("give either at, or local_time and date", "at")


class CampaignCreate(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    template = fields.String(required=True, validate=validate.Length(1, 128))
    languages = fields.List(LanguageCode(), required=True, validate=validate.Length(1, 20))
    category = fields.String(
        load_default=Category.MARKETING,
        validate=validate.OneOf([Category.MARKETING, Category.UTILITY]),
    )
    params = fields.List(
        fields.String(validate=validate.OneOf(sorted(campaigns.CAMPAIGN_PARAMETERS))),
        load_default=list,
        validate=validate.Length(max=10),
        metadata={"description": "body parameters, in order"},
    )
    fallbacks = fields.Dict(
        keys=fields.String(validate=validate.OneOf(sorted(campaigns.CAMPAIGN_PARAMETERS))),
        values=fields.String(validate=validate.Length(1, 200)),
        load_default=dict,
    )
    segment = fields.Nested(SegmentSchema, load_default=dict)
    schedule = fields.Nested(ScheduleSchema, allow_none=True, load_default=None)


class Progress(Schema):
    targeted = fields.Integer()
    queued = fields.Integer()
    sent = fields.Integer()
    delivered = fields.Integer()
    read = fields.Integer()
    failed = fields.Integer()
    suppressed = fields.Integer()
    suppressed_by_reason = fields.Dict(keys=fields.String(), values=fields.Integer())
    by_state = fields.Dict(keys=fields.String(), values=fields.Integer())


class CampaignOut(Schema):
    id = fields.Integer()
    name = fields.String()
    template = fields.String()
    languages = fields.List(fields.String())
    category = fields.String()
    params = fields.List(fields.String())
    fallbacks = fields.Dict()
    segment = fields.Dict()
    schedule = fields.Dict(allow_none=True)
    state = fields.String()
    created_by = fields.String()
    created_at = UtcDateTime()
    launched_at = UtcDateTime(allow_none=True)
    finished_at = UtcDateTime(allow_none=True)
    progress = fields.Nested(Progress)


class CampaignQuery(PageQuery):
    state = fields.String(validate=validate.OneOf([s.value for s in campaigns.CampaignState]))


class CampaignPage(Schema):
    items = fields.List(fields.Nested(CampaignOut))
    next_after = fields.Integer(allow_none=True)


class SegmentPreview(SegmentSchema):
    """A segment, and the category of the campaign it is for (consent depends on it)."""

    category = fields.String(
        load_default=Category.MARKETING,
        validate=validate.OneOf([Category.MARKETING, Category.UTILITY]),
        metadata={"description": "marketing needs the customer's marketing consent"},
    )


class Excluded(Schema):
    invalid_phone = fields.Integer()
    erased = fields.Integer()
    opted_out = fields.Integer()
    no_marketing_consent = fields.Integer()


class PreviewOut(Schema):
    count = fields.Integer(metadata={"description": "customers a campaign would send to now"})
    matched = fields.Integer(metadata={"description": "customers the filters select"})
    excluded = fields.Nested(
        Excluded, metadata={"description": "matched but not sent to, by the first reason"}
    )


# --- routes --------------------------------------------------------------------------


def campaign_json(campaign: Campaign) -> dict:
    body = CampaignOut().dump(campaign)
    body["progress"] = campaigns.progress(campaign)
    return body


@bp.post("/api/segments/preview")
@endpoint(
    tag="campaigns",
    body=SegmentPreview,
    response=PreviewOut,
    example={"countries": ["IN"], "min_orders": 1, "category": "marketing"},
)
def preview_segment(body: dict):
    """How many customers a campaign of `category` to this segment would send to right
    now, how many the filters select, and why the others would get nothing."""
    category = body.pop("category")
    salt = services().settings.suppression_salt
    return jsonify(preview(SegmentSchema().dump(body), category, salt))


@bp.post("/api/campaigns")
@endpoint(
    tag="campaigns",
    body=CampaignCreate,
    response=CampaignOut,
    status=201,
    example={
        "name": "Diwali sale 2026",
        "template": "diwali_sale",
        "languages": ["en", "hi"],
        "category": "marketing",
        "params": ["customer_name"],
        "fallbacks": {"customer_name": "there"},
        "segment": {"countries": ["IN"], "marketing_opt_in": True},
        "schedule": {"local_time": "10:00", "date": "2026-11-01"},
    },
)
def create_campaign(body: dict):
    """A draft campaign: a template (per language) for a segment, now or scheduled."""
    draft = {**body, "segment": SegmentSchema().dump(body["segment"])}
    campaign = campaigns.create(draft, actor(), utcnow())
    return jsonify(campaign_json(campaign)), 201


@bp.get("/api/campaigns")
@endpoint(tag="campaigns", query=CampaignQuery, response=CampaignPage)
def list_campaigns(query: dict):
    """Campaigns, oldest first, optionally by state."""
    rows = Campaign.select()
    if "state" in query:
        rows = rows.where(Campaign.state == query["state"])
    items, next_after = page(rows, query["limit"], query["after"], Campaign.id)
    return jsonify(items=[campaign_json(c) for c in items], next_after=next_after)


@bp.get("/api/campaigns/<int:campaign_id>")
@endpoint(tag="campaigns", response=CampaignOut, errors=(404,))
def show_campaign(campaign_id: int):
    """One campaign with its progress: targeted, queued, sent, suppressed by reason."""
    return jsonify(campaign_json(get_or_404(Campaign, campaign_id)))


def change(campaign_id: int, action: str, apply) -> tuple:
    now = utcnow()
    campaign = get_or_404(Campaign, campaign_id)
    try:
        campaign = apply(campaign, now)
    except campaigns.NotAllowed as exc:
        raise ApiError(409, "not_allowed", str(exc)) from None
    audit(actor(), f"{action}_campaign", str(campaign_id), {"state": campaign.state}, now)
    return jsonify(campaign_json(campaign))


@bp.post("/api/campaigns/<int:campaign_id>/launch")
@endpoint(tag="campaigns", response=CampaignOut, errors=(404, 409))
def launch_campaign(campaign_id: int):
    """Start a draft campaign (at its scheduled time, if it has one)."""
    queues = services().queues
    return change(campaign_id, "launch", lambda c, now: campaigns.launch(c, queues, now))


@bp.post("/api/campaigns/<int:campaign_id>/pause")
@endpoint(
    tag="campaigns", response=CampaignOut, errors=(404, 409), path_examples={"campaign_id": 2}
)
def pause_campaign(campaign_id: int):
    """Stop creating batches; resume carries on where it stopped."""
    return change(campaign_id, "pause", campaigns.pause)


@bp.post("/api/campaigns/<int:campaign_id>/resume")
@endpoint(
    tag="campaigns", response=CampaignOut, errors=(404, 409), path_examples={"campaign_id": 3}
)
def resume_campaign(campaign_id: int):
    """Carry on with a paused campaign; nobody already targeted is messaged again."""
    queues = services().queues
    return change(campaign_id, "resume", lambda c, now: campaigns.resume(c, queues, now))


@bp.post("/api/campaigns/<int:campaign_id>/cancel")
@endpoint(tag="campaigns", response=CampaignOut, errors=(404, 409))
def cancel_campaign(campaign_id: int):
    """Stop for good; messages not yet sent are suppressed as cancelled."""
    return change(campaign_id, "cancel", campaigns.cancel)
