"""Admin API: A/B tests of order-update and campaign templates — create, start, stop,
roll out the winner, read the results — and the conversions a shop posts. Audited."""

from __future__ import annotations

from flask import jsonify
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from bot.campaigns import experiments
from bot.campaigns.experiments import Phase
from bot.core import phones
from bot.core.audit import audit
from bot.core.errors import ApiError
from bot.core.fields import WholeNumber
from bot.core.models import (
    Customer,
    EventKind,
    Experiment,
    utcnow,
    write_transaction,
)
from bot.core.notifications import PARAMETERS
from bot.extensions import services
from bot.web.admin import bp
from bot.web.admin.api import dump, get_or_404
from bot.web.admin.schemas import LanguageCode
from bot.web.auth import actor
from bot.web.contract import MAX_ID, PageQuery, UtcDateTime, endpoint, page

# --- schemas -------------------------------------------------------------------------


class Variant(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 64))
    weight = WholeNumber(required=True, validate=validate.Range(1, 1000))
    template = fields.String(validate=validate.Length(1, 128))
    languages = fields.List(LanguageCode(), validate=validate.Length(1, 20))
    body = fields.List(fields.String(validate=validate.OneOf(sorted(PARAMETERS))))


class ExperimentCreate(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    event_kind = fields.String(validate=validate.OneOf([k.value for k in EventKind]))
    campaign_id = WholeNumber(validate=validate.Range(1, MAX_ID))
    variants = fields.List(
        fields.Nested(Variant),
        required=True,
        validate=validate.Length(2, experiments.MAX_VARIANTS),
    )
    goal = fields.String(required=True, validate=validate.OneOf(experiments.GOALS))
    conversion_days = WholeNumber(load_default=7, validate=validate.Range(1, 90))
    auto_rollout = fields.Boolean(load_default=False)
    min_sample = WholeNumber(load_default=100, validate=validate.Range(1, 1_000_000))

    @validates_schema
    def check_target(self, data: dict, **kwargs) -> None:
        if ("event_kind" in data) == ("campaign_id" in data):
            raise ValidationError("give exactly one of event_kind and campaign_id", "event_kind")
        names = [v["name"] for v in data.get("variants", [])]
        if len(set(names)) != len(names):
            raise ValidationError("variant names must differ", "variants")


class RolloutBody(Schema):
    winner = fields.String(
        validate=validate.Length(1, 64),
        metadata={"description": "default: the significant winner, if there is one"},
    )
    override = fields.Boolean(
        load_default=False,
        metadata={
            "description": "true to roll out a variant that is not the significant winner "
            "(or while there is none); audited"
        },
    )


class VariantResult(Schema):
    name = fields.String()
    sent = fields.Integer()
    goal_hits = fields.Integer()
    rate = fields.Float(allow_none=True)
    ci_low = fields.Float(metadata={"description": "95% Wilson interval"})
    ci_high = fields.Float()
    p_value = fields.Float(
        allow_none=True, metadata={"description": "two-proportion z-test against the best"}
    )
    best = fields.Boolean()


class ExperimentOut(Schema):
    id = fields.Integer()
    name = fields.String()
    event_kind = fields.String(allow_none=True)
    campaign_id = fields.Integer(allow_none=True)
    variants = fields.List(fields.Dict())
    goal = fields.String()
    conversion_days = fields.Integer()
    state = fields.String()
    winner = fields.String(allow_none=True)
    auto_rollout = fields.Boolean()
    min_sample = fields.Integer()
    started_at = UtcDateTime(allow_none=True)
    stopped_at = UtcDateTime(allow_none=True)
    created_at = UtcDateTime()


class ExperimentDetail(ExperimentOut):
    results = fields.List(fields.Nested(VariantResult))
    significant_winner = fields.String(allow_none=True)


class ExperimentPage(Schema):
    items = fields.List(fields.Nested(ExperimentOut))
    next_after = fields.Integer(allow_none=True)


class ConversionCreate(Schema):
    phone = fields.String(validate=validate.Length(3, 32))
    customer_id = WholeNumber(validate=validate.Range(1, MAX_ID))
    order_id = fields.String(required=True, validate=validate.Length(1, 64))
    occurred_at = UtcDateTime(required=True, metadata={"description": "naive = UTC"})
    source = fields.String(load_default="shop", validate=validate.Length(1, 32))

    @validates_schema
    def check_who(self, data: dict, **kwargs) -> None:
        if ("phone" in data) == ("customer_id" in data):
            raise ValidationError("give exactly one of phone and customer_id", "phone")


class ConversionOut(Schema):
    id = fields.Integer()
    customer_id = fields.Integer()
    order_ref = fields.String()
    occurred_at = UtcDateTime()
    source = fields.String()


# --- experiments ---------------------------------------------------------------------


@bp.get("/api/experiments")
@endpoint(tag="experiments", query=PageQuery, response=ExperimentPage)
def list_experiments(query: dict):
    """A/B tests, oldest first."""
    items, next_after = page(Experiment.select(), query["limit"], query["after"], Experiment.id)
    return jsonify(items=dump(ExperimentOut, items, many=True), next_after=next_after)


@bp.post("/api/experiments")
@endpoint(
    tag="experiments",
    body=ExperimentCreate,
    response=ExperimentOut,
    status=201,
    errors=(409,),
    example={
        "name": "Shipped: tracking button or link",
        "event_kind": "shipped",
        "variants": [
            {"name": "link", "weight": 1},
            {
                "name": "button",
                "weight": 1,
                "template": "order_shipped_button",
                "languages": ["en", "hi"],
                "body": ["customer_name", "order_number"],
            },
        ],
        "goal": "read",
        "conversion_days": 7,
        "min_sample": 200,
    },
)
def create_experiment(body: dict):
    """Define an A/B test (a draft until started)."""
    now = utcnow()
    with write_transaction():
        if Experiment.select().where(Experiment.name == body["name"]).exists():
            raise ApiError(409, "exists", "an experiment with this name exists")
        experiment = Experiment.create(created_at=now, updated_at=now, **body)
        audit(actor(), "create_experiment", str(experiment.id), {"after": body}, now)
    return jsonify(dump(ExperimentOut, experiment)), 201


@bp.get("/api/experiments/<int:experiment_id>")
@endpoint(tag="experiments", response=ExperimentDetail, errors=(404,))
def show_experiment(experiment_id: int):
    """An A/B test with each variant's rate, 95% interval and p-value against the best."""
    experiment = get_or_404(Experiment, experiment_id)
    rows = experiments.results(experiment)
    winner = experiments.decide_rollout(rows, min_sample=experiment.min_sample)
    return jsonify(
        {**dump(ExperimentOut, experiment), "results": rows, "significant_winner": winner}
    )


@bp.post("/api/experiments/<int:experiment_id>/start")
@endpoint(tag="experiments", response=ExperimentOut, errors=(404, 409))
def start_experiment(experiment_id: int):
    """Start splitting customers between the variants."""
    return _move(experiment_id, Phase.DRAFT, Phase.RUNNING, "start_experiment")


@bp.post("/api/experiments/<int:experiment_id>/stop")
@endpoint(
    tag="experiments", response=ExperimentOut, errors=(404, 409), path_examples={"experiment_id": 2}
)
def stop_experiment(experiment_id: int):
    """Stop the test, or end its roll-out: messages go back to the notification map's
    template."""
    return _move(experiment_id, experiments.LIVE, Phase.STOPPED, "stop_experiment")


@bp.post("/api/experiments/<int:experiment_id>/rollout")
@endpoint(
    tag="experiments",
    body=RolloutBody,
    response=ExperimentOut,
    errors=(404, 409),
    example={"winner": "button", "override": True},
    path_examples={"experiment_id": 2},
)
def roll_out_experiment(experiment_id: int, body: dict):
    """Send the winner's template to everyone until the experiment is stopped or the
    event's template is edited. Another variant than the significant winner (or any,
    while none has won) needs `override: true`."""
    experiment = get_or_404(Experiment, experiment_id)
    significant = experiments.decide_rollout(
        experiments.results(experiment), min_sample=experiment.min_sample
    )
    winner = body.get("winner") or significant
    if winner is None:
        raise ApiError(
            409,
            "undecided",
            "no variant has won significantly yet; name a winner with override: true",
        )
    if winner not in {v["name"] for v in experiment.variants}:
        raise ApiError(400, "invalid_body", "invalid body", {"winner": ["not a variant"]})
    if winner != significant and not body["override"]:
        won = f"{significant!r} won" if significant else "no variant has won significantly"
        raise ApiError(
            409,
            "not_the_winner",
            f"{winner!r} is not the significant winner ({won}); "
            "send override: true to roll it out anyway",
        )
    rolled = experiments.roll_out(experiment, winner, actor(), utcnow(), significant)
    if rolled is None:
        raise ApiError(409, "conflict", f"the experiment is {experiment.state}, not running")
    return jsonify(dump(ExperimentOut, rolled))


def _move(experiment_id: int, source: Phase | tuple, target: Phase, action: str):
    now = utcnow()
    sources = source if isinstance(source, tuple) else (source,)
    with write_transaction():
        experiment = get_or_404(Experiment, experiment_id)
        if experiment.state not in sources:
            expected = " or ".join(sources)
            raise ApiError(409, "conflict", f"the experiment is {experiment.state}, not {expected}")
        other = target == Phase.RUNNING and _another_live(experiment)
        if other:
            raise ApiError(
                409,
                "conflict",
                f"another experiment is live for the same messages: {other.id} "
                f"({other.name!r}, {other.state}); stop it first",
            )
        before = experiment.state
        experiment.state, experiment.updated_at = target, now
        if target == Phase.RUNNING:
            experiment.started_at = now
        if target == Phase.STOPPED:
            experiment.stopped_at = now
        experiment.save()
        audit(actor(), action, str(experiment.id), {"before": before, "after": target}, now)
    return jsonify(dump(ExperimentOut, experiment))


def _another_live(experiment: Experiment) -> Experiment | None:
    same = (
        Experiment.event_kind == experiment.event_kind
        if experiment.event_kind
        else Experiment.campaign_id == experiment.campaign_id
    )
    live = Experiment.state.in_(experiments.LIVE) & (Experiment.id != experiment.id)
    return Experiment.select().where(same & live).order_by(Experiment.id).first()


# --- conversions ---------------------------------------------------------------------


@bp.post("/api/conversions")
@endpoint(
    tag="experiments",
    body=ConversionCreate,
    response=ConversionOut,
    status=201,
    example={
        "phone": "+919812345601",
        "order_id": "SO-2026-004750",
        "occurred_at": "2026-11-25T11:40:02+05:30",
        "source": "shop",
    },
)
def record_conversion(body: dict):
    """Record a conversion (an order) the shop counts toward experiments; idempotent
    per customer and order."""
    conversion = experiments.record_conversion(
        conversion_customer(body),
        body["order_id"],
        body["occurred_at"],  # naive UTC already (UtcDateTime)
        body["source"],
        actor(),
        utcnow(),
    )
    return jsonify(dump(ConversionOut, conversion)), 201


def conversion_customer(body: dict) -> Customer:
    """The customer a conversion names, by id or by phone number; 400 if none."""
    if "customer_id" in body:
        customer = Customer.get_or_none(Customer.id == body["customer_id"])
    else:
        phone = phones.to_e164(body["phone"], services().settings.default_region)
        customer = Customer.get_or_none(Customer.phone == phone) if phone else None
    if customer is None:
        field = "customer_id" if "customer_id" in body else "phone"
        raise ApiError(400, "invalid_body", "invalid body", {field: ["no such customer"]})
    return customer
