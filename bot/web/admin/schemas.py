"""The admin API's contract: every query string, body and response, as marshmallow
schemas. Unknown fields in a request are rejected (the client learns of its typo)."""

from __future__ import annotations

from zoneinfo import available_timezones

from babel import Locale, UnknownLocaleError
from marshmallow import Schema, ValidationError, fields, validate

from bot.campaigns.segments import REGION
from bot.core import languages, zones
from bot.core.fields import WholeNumber
from bot.core.models import Category, EventKind, Reason, State
from bot.core.notifications import PARAMETERS
from bot.web.contract import MAX_ID, PageQuery, UtcDateTime

NAME = validate.Length(1, 200)
TAG = fields.String(validate=validate.Length(1, 64))


def check_language(value: str) -> None:
    try:
        Locale.parse(value.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        raise ValidationError("not a known language code") from None


def check_timezone(value: str) -> None:
    if value not in available_timezones():
        raise ValidationError("not a time zone name such as Asia/Kolkata")


#: The shape of every code Babel parses (en, hi, pt-BR, zh_Hant_TW): what the document
#: can say of a language; Babel's own list is the rest of the check.
LANGUAGE_SHAPE = r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*\Z"
#: The shape of every IANA time zone name (UTC, Asia/Kolkata, Etc/GMT+5).
TIME_ZONE_SHAPE = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*\Z"


class LanguageCode(fields.String):
    """A language code Babel (CLDR) knows; its shape is in the document."""

    def __init__(self, **kwargs) -> None:
        super().__init__(validate=[validate.Regexp(LANGUAGE_SHAPE), check_language], **kwargs)


class CustomerLanguage(LanguageCode):
    """The language a customer reads, stored as its BCP 47 tag ("en_IN" -> "en-IN")."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return languages.parse_language(text)
        except ValueError:
            return text  # the validators say what is wrong with it


class TimeZoneName(fields.String):
    """An IANA time zone name the server's zone database has; its shape is documented.
    An old name is taken and stored under its canonical one (Asia/Calcutta -> Asia/Kolkata)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(validate=[validate.Regexp(TIME_ZONE_SHAPE), check_timezone], **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        return zones.canonical(super()._deserialize(value, attr, data, **kwargs))


#: A template parameter's name (bot/core/notifications.py): the map refuses any other.
TEMPLATE_PARAMETER = validate.OneOf(sorted(PARAMETERS))


# --- customers ---------------------------------------------------------------------


class CustomerQuery(PageQuery):
    q = fields.String(
        validate=validate.Length(1, 100),
        metadata={
            "description": "name contains, or phone number as typed: its digits"
            " ('98111 22233', '+91 98111-22233'; an unencoded + reads as a space)"
            " or the number it is in DEFAULT_REGION ('098111 22233')"
        },
    )
    tag = fields.String(validate=validate.Length(1, 64))
    opted_out = fields.Boolean()
    flagged = fields.Boolean(metadata={"description": "waiting for a person"})


class CustomerFields(Schema):
    name = fields.String(allow_none=True, validate=NAME)
    language = CustomerLanguage(allow_none=True)
    timezone = TimeZoneName(allow_none=True)
    tags = fields.List(TAG, validate=validate.Length(max=50))


class CustomerCreate(CustomerFields):
    phone = fields.String(required=True, validate=validate.Length(3, 32))
    country = fields.String(
        validate=REGION,
        metadata={"description": "region for numbers without +"},
    )


class CustomerUpdate(CustomerFields):
    phone = fields.String(
        validate=validate.Length(3, 32),
        metadata={"description": "a new number (E.164, or national with `country`)"},
    )
    country = fields.String(
        validate=REGION,
        metadata={"description": "region for a new number without +"},
    )


class CustomerOut(Schema):
    id = fields.Integer()
    phone = fields.String()
    name = fields.String(allow_none=True)
    language = fields.String(allow_none=True)
    timezone = fields.String(allow_none=True)
    tags = fields.List(fields.String())
    opted_out = fields.Boolean()
    marketing_opt_in = fields.Boolean()
    last_inbound_at = UtcDateTime(allow_none=True)
    needs_agent_since = UtcDateTime(allow_none=True)
    created_at = UtcDateTime()
    updated_at = UtcDateTime()


class CustomerPage(Schema):
    items = fields.List(fields.Nested(CustomerOut))
    next_after = fields.Integer(allow_none=True)


class ConsentChange(Schema):
    category = fields.String(required=True, validate=validate.OneOf(["all", "marketing"]))
    action = fields.String(required=True, validate=validate.OneOf(["opt_in", "opt_out"]))
    note = fields.String(
        validate=validate.Length(max=500), metadata={"description": "why, for the ledger"}
    )


class ConsentOut(Schema):
    id = fields.Integer()
    category = fields.String()
    action = fields.String()
    source = fields.String()
    evidence = fields.Dict(allow_none=True)
    created_at = UtcDateTime()


class ConsentList(Schema):
    items = fields.List(fields.Nested(ConsentOut))


# --- messages ----------------------------------------------------------------------


class MessageQuery(PageQuery):
    state = fields.String(validate=validate.OneOf([s.value for s in State]))
    reason = fields.String(validate=validate.OneOf([r.value for r in Reason]))
    template = fields.String(validate=validate.Length(1, 128))
    customer_id = fields.Integer(validate=validate.Range(1, MAX_ID))
    since = UtcDateTime(metadata={"description": "created at or after (UTC)"})
    until = UtcDateTime(metadata={"description": "created before (UTC)"})


class StatusEventOut(Schema):
    status = fields.String()
    provider = fields.String()
    error_code = fields.String(allow_none=True)
    error_text = fields.String(allow_none=True)
    occurred_at = UtcDateTime()
    received_at = UtcDateTime()


class MessageOut(Schema):
    id = fields.Integer()
    customer_id = fields.Integer(allow_none=True)
    phone = fields.String()
    kind = fields.String()
    category = fields.String()
    state = fields.String()
    reason = fields.String(allow_none=True)
    template = fields.String(allow_none=True, attribute="template_name")
    language = fields.String(allow_none=True)
    text = fields.String(allow_none=True)
    attempts = fields.Integer()
    provider = fields.String(allow_none=True)
    provider_message_id = fields.String(allow_none=True)
    route = fields.String(
        allow_none=True,
        metadata={
            "description": "the provider API that took it when not the usual one: "
            "marketing_messages (Meta's Marketing Messages API, by the setting) or "
            "marketing_messages_after_refusal (resent there after Meta's 131063)"
        },
    )
    error_code = fields.String(allow_none=True)
    error_text = fields.String(allow_none=True)
    created_at = UtcDateTime()
    next_attempt_at = UtcDateTime(allow_none=True)
    sent_at = UtcDateTime(allow_none=True)
    delivered_at = UtcDateTime(allow_none=True)
    read_at = UtcDateTime(allow_none=True)
    failed_at = UtcDateTime(allow_none=True)


class MessageDetail(MessageOut):
    status_events = fields.List(fields.Nested(StatusEventOut))


class MessagePage(Schema):
    items = fields.List(fields.Nested(MessageOut))
    next_after = fields.Integer(allow_none=True)


# --- orders ------------------------------------------------------------------------


class OrderQuery(PageQuery):
    source = fields.String(validate=validate.OneOf(["generic", "shopify", "woocommerce"]))
    external_id = fields.String(validate=validate.Length(1, 64))
    number = fields.String(validate=validate.Length(1, 64))
    customer_id = fields.Integer(validate=validate.Range(1, MAX_ID))


class OrderOut(Schema):
    id = fields.Integer()
    source = fields.String()
    external_id = fields.String()
    number = fields.String(allow_none=True)
    customer_id = fields.Integer(allow_none=True)
    currency = fields.String(allow_none=True)
    total = fields.Decimal(allow_none=True, as_string=True, places=2)
    status = fields.String(allow_none=True)
    stage = fields.String(allow_none=True)
    tracking_url = fields.String(allow_none=True)
    cod_answer = fields.String(
        allow_none=True,
        metadata={
            "description": "the customer's tap on the COD confirmation: confirmed, cancelled"
        },
    )
    cod_answered_at = UtcDateTime(allow_none=True)
    created_at = UtcDateTime()
    updated_at = UtcDateTime()


class WriteBackOut(Schema):
    action = fields.String(metadata={"description": "confirmed, cancelled or unanswered"})
    state = fields.String(metadata={"description": "pending, done, failed or skipped"})
    attempts = fields.Integer()
    last_error = fields.String(allow_none=True)
    next_attempt_at = UtcDateTime()
    created_at = UtcDateTime()
    done_at = UtcDateTime(allow_none=True)


class OrderEventOut(Schema):
    id = fields.Integer()
    topic = fields.String()
    kind = fields.String(allow_none=True)
    received_at = UtcDateTime()


class OrderDetail(OrderOut):
    events = fields.List(fields.Nested(OrderEventOut))
    messages = fields.List(fields.Nested(MessageOut))
    write_backs = fields.List(
        fields.Nested(WriteBackOut),
        metadata={"description": "what Dakiya wrote back, or still owes, to the shop"},
    )


class OrderPage(Schema):
    items = fields.List(fields.Nested(OrderOut))
    next_after = fields.Integer(allow_none=True)


# --- templates and settings ----------------------------------------------------------


class ButtonSchema(Schema):
    index = WholeNumber(required=True, validate=validate.Range(0, 9))
    sub_type = fields.String(required=True, validate=validate.OneOf(["url", "quick_reply"]))
    value = fields.String(required=True, validate=TEMPLATE_PARAMETER)


class TemplateMapping(Schema):
    template = fields.String(required=True, validate=validate.Length(1, 128))
    languages = fields.List(LanguageCode(), required=True, validate=validate.Length(1, 20))
    category = fields.String(
        load_default="utility", validate=validate.OneOf([Category.UTILITY, Category.MARKETING])
    )
    header = fields.List(fields.String(validate=TEMPLATE_PARAMETER), load_default=list)
    body = fields.List(fields.String(validate=TEMPLATE_PARAMETER), load_default=list)
    buttons = fields.List(fields.Nested(ButtonSchema), load_default=list)
    enabled = fields.Boolean(load_default=True)


class MetaCategoryOut(Schema):
    language = fields.String(metadata={"description": "Meta's code; empty: every language"})
    category = fields.String(metadata={"description": "Meta's, in force since changed_at"})
    previous_category = fields.String(allow_none=True)
    changed_at = UtcDateTime()


class TemplateMappingOut(TemplateMapping):
    event = fields.String(validate=validate.OneOf([k.value for k in EventKind]))
    meta_categories = fields.List(
        fields.Nested(MetaCategoryOut),
        metadata={
            "description": "what Meta re-categorised the template as "
            "(template_category_update); marketing here sends its messages as marketing"
        },
    )
    source = fields.String(
        validate=validate.OneOf(["file", "override"]),
        metadata={
            "description": "file: the map file's entry; override: an admin's edit, "
            "until DELETE /admin/api/templates/<event>"
        },
    )


class EndedExperiment(Schema):
    id = fields.Integer()
    name = fields.String()
    state = fields.String(metadata={"description": "the state it was in: running or rolled_out"})


class TemplateList(Schema):
    items = fields.List(fields.Nested(TemplateMappingOut))
    fallbacks = fields.Dict(keys=fields.String(), values=fields.String())
    ended_experiments = fields.List(
        fields.Nested(EndedExperiment),
        metadata={"description": "experiments this change stopped (the edit wins)"},
    )


def policy_fields(**kwargs) -> dict:
    """The settings an admin may change at run time (bot.core.runtime.OVERRIDABLE)."""
    hours = "HH:MM-HH:MM or off"
    count = validate.Range(0, 1000)
    return {
        "quiet_hours_marketing": fields.String(metadata={"description": hours}, **kwargs),
        "quiet_hours_utility": fields.String(metadata={"description": hours}, **kwargs),
        "marketing_daily_cap": WholeNumber(validate=count, **kwargs),
        "marketing_weekly_cap": WholeNumber(validate=count, **kwargs),
        "utility_daily_cap": WholeNumber(validate=count, **kwargs),
        "utility_weekly_cap": WholeNumber(validate=count, **kwargs),
        "min_gap_seconds": WholeNumber(validate=validate.Range(0, 86400), **kwargs),
        "messaging_tier": fields.String(
            validate=validate.OneOf(["250", "2000", "10000", "100000", "unlimited"]), **kwargs
        ),
        "duplicate_window_seconds": WholeNumber(validate=validate.Range(0, 30 * 86400), **kwargs),
        "send_rate_per_second": WholeNumber(validate=validate.Range(1, 1000), **kwargs),
    }


#: A change of the policy settings; `null` clears the run-time value of a setting.
PolicySettings = type(
    "PolicySettings",
    (Schema,),
    {
        "__doc__": "Settings to change at run time; null: back to the environment's value.",
        **policy_fields(allow_none=True),
    },
)

PolicySettingsOut = type(
    "PolicySettingsOut",
    (Schema,),
    {
        "__doc__": "The policy settings in force.",
        **policy_fields(),
        "overridden": fields.List(fields.String(), metadata={"description": "changed at run time"}),
    },
)


# --- conversations -------------------------------------------------------------------


class ConversationQuery(PageQuery):
    flagged = fields.Boolean(load_default=True)


class ConversationMessage(Schema):
    direction = fields.String()
    at = fields.String(allow_none=True)
    text = fields.String(allow_none=True)
    intent = fields.String(allow_none=True)
    state = fields.String(allow_none=True)


class ConversationOut(Schema):
    customer_id = fields.Integer()
    phone = fields.String()
    name = fields.String(allow_none=True)
    language = fields.String(allow_none=True)
    needs_agent_since = fields.String(allow_none=True)
    last_inbound_at = fields.String(allow_none=True)
    messages = fields.List(fields.Nested(ConversationMessage))


class ConversationList(Schema):
    conversations = fields.List(fields.Nested(ConversationOut))
    next_after = fields.Integer(allow_none=True)
