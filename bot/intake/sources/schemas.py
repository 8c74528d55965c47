"""What an order delivery must look like: raw body -> JSON object -> marshmallow schema.

Shop payloads are read leniently (unknown fields excluded, nulls allowed) because shops add
fields with every API version; the generic schema is our own published contract and strict.
Every failure becomes a `PayloadError` whose `fields` names each offending field by path.

Everything is checked before anything is written, against the columns it will be stored
in (bot/core/models.py; PostgreSQL enforces VARCHAR(n), SQLite does not): text people type and
only read (a customer's name, a carrier's name, the shop's status word) is cut to fit, so
no order is lost over a long name; identifiers and codes (ids, order and tracking
numbers, currencies, language tags in our own schema) and totals the column cannot hold
are refused with 400 naming the field, since a cut id or a wrong amount would be wrong.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC
from decimal import Decimal
from typing import Any, Protocol

from babel.numbers import list_currencies
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from bot.core.errors import flatten_errors, unstorable_path
from bot.core.jsonbody import InvalidJson, decode_json
from bot.core.models import Customer, EventKind, Order, OrderEvent
from bot.intake.sources.base import PayloadError


class HeaderMap(Protocol):
    """Werkzeug's request headers in the app, a plain dict in tests."""

    def items(self) -> Iterable[tuple[str, str]]: ...


def header(headers: HeaderMap, name: str) -> str | None:
    """The value of header `name`, matched case-insensitively as HTTP requires."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


#: The longest delivery or event id a header may carry: it is stored as
#: OrderEvent.external_event_id and inside OrderEvent.dedupe_key.
MAX_HEADER_ID = OrderEvent.external_event_id.max_length


def require_header(headers: HeaderMap, name: str, max_length: int = MAX_HEADER_ID) -> str:
    """The non-blank value of header `name` (at most `max_length` characters), or a
    `PayloadError` naming it."""
    value = (header(headers, name) or "").strip()
    if not value:
        raise PayloadError(f"missing header {name}", {name: ["Missing header."]})
    return bounded_header(name, value, max_length)


def optional_header(headers: HeaderMap, name: str, max_length: int = MAX_HEADER_ID) -> str | None:
    """The value of header `name` when present and not blank, checked like a required one."""
    value = (header(headers, name) or "").strip()
    return bounded_header(name, value, max_length) if value else None


def bounded_header(name: str, value: str, max_length: int) -> str:
    if len(value) > max_length:
        raise PayloadError(
            f"header {name} is too long", {name: [f"Longer than {max_length} characters."]}
        )
    return value


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def load_json_object(body: bytes) -> dict[str, Any]:
    """Parse the raw body; anything but a JSON object is a `PayloadError` on "body".

    Integers stay Python ints, so Shopify ids above 2^53 keep every digit.
    """
    try:
        data = decode_json(body, parse_constant=_reject_constant)
    except InvalidJson as exc:
        raise PayloadError(f"body is {exc}", {"body": [f"Invalid JSON: {exc}"]}) from None
    if not isinstance(data, dict):
        raise PayloadError("body is not a JSON object", {"body": ["Must be a JSON object."]})
    bad = unstorable_path(data)
    if bad is not None:
        raise PayloadError(
            "text contains a character that cannot be stored",
            {
                bad or "body": [
                    "Contains a character that cannot be stored (NUL or a lone surrogate)."
                ]
            },
        )
    return data


def validate_payload(schema: Schema, data: dict[str, Any]) -> dict[str, Any]:
    """Load `data` with `schema`, turning a `ValidationError` into a `PayloadError`."""
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise PayloadError("payload is malformed", flatten_errors(exc.messages)) from None


def present(*values: Any) -> list[str]:
    """Every value that is a non-blank string, in order, each once (phones stay raw)."""
    found: list[str] = []
    for value in values:
        if isinstance(value, str) and value.strip() and value not in found:
            found.append(value)
    return found


def first_present(*values: Any) -> str | None:
    """The first value that is a non-blank string, unchanged (phones stay raw)."""
    for value in values:
        if isinstance(value, str) and value.strip():
            return value
    return None


class ExternalId(fields.Field):
    """A shop's id, number or text, always kept as an exact string (never a float)."""

    default_error_messages = {
        "invalid": "Not a valid id.",
        "too_long": "Longer than {max_length} characters.",
    }

    def __init__(self, max_length: int = Order.external_id.max_length, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_length = max_length

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip():
            raise self.make_error("invalid")
        if len(str(value).strip()) > self.max_length:  # an id cut short is another id
            raise self.make_error("too_long", max_length=self.max_length)
        return str(value).strip()


class CutText(fields.String):
    """Text people type and only read (a name, a carrier): cut to fit its column rather
    than refused, so a long name never costs an order."""

    def __init__(self, max_length: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_length = max_length

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs)[: self.max_length]


#: ISO 4217 as Babel (CLDR) knows it: "INR", not "RUPEE" or "inr".
CURRENCIES = sorted(list_currencies())


def _currency() -> fields.String:
    """An optional ISO 4217 currency code (published as its pattern and enum)."""
    return fields.String(
        allow_none=True,
        load_default=None,
        validate=[
            validate.Regexp(r"[A-Z]{3}\Z", error="Must be a 3-letter upper-case ISO 4217 code."),
            validate.OneOf(CURRENCIES, error="Not an ISO 4217 currency code (e.g. INR)."),
        ],
    )


#: Order.total is NUMERIC(14, 2): at most 12 digits before the decimal point.
MAX_TOTAL = Decimal(10) ** (Order.total.max_digits - Order.total.decimal_places)


def _text(max_length: int | None = None, **kwargs: Any) -> fields.String:
    """Optional text; with `max_length`, cut to fit the column it is stored in."""
    if max_length is None:
        return fields.String(allow_none=True, load_default=None, **kwargs)
    return CutText(max_length, allow_none=True, load_default=None, **kwargs)


def _bounded(max_length: int) -> fields.String:
    """Optional text that identifies something (a tracking or order number): refused,
    not cut, when longer than its column."""
    return fields.String(
        allow_none=True, load_default=None, validate=validate.Length(max=max_length)
    )


def _money(minimum: Decimal = -MAX_TOTAL) -> fields.Decimal:
    """An amount the Order.total column can hold (no NaN or infinity, no 1e20)."""
    return fields.Decimal(
        allow_none=True,
        load_default=None,
        validate=validate.Range(
            min=minimum,
            max=MAX_TOTAL,
            max_inclusive=False,
            error=f"Must be at least {{min}} and less than {MAX_TOTAL:,}.",
        ),
    )


NAME = Customer.name.max_length
CARRIER = Order.carrier.max_length
TRACKING_NUMBER = Order.tracking_number.max_length
STATUS = Order.status.max_length
LANGUAGE = Customer.language.max_length
ORDER_NUMBER = Order.number.max_length


class ShopPayload(Schema):
    """A shop's own resource: we read a handful of fields and ignore the rest."""

    class Meta:
        unknown = EXCLUDE


# --- Shopify (PROVIDERS.md §3.3) -------------------------------------------------------


class ShopifyAddressSchema(ShopPayload):
    first_name = _text(NAME)
    name = _text(NAME)
    phone = _text()
    country_code = _text()


class ShopifyConsentSchema(ShopPayload):
    state = _text()  # subscribed | not_subscribed | unsubscribed | pending ... (§3.3)
    opt_in_level = _text()
    consent_updated_at = _text()
    consent_collected_from = _text()


class ShopifyCustomerSchema(ShopPayload):
    first_name = _text(NAME)
    phone = _text()
    sms_marketing_consent = fields.Nested(ShopifyConsentSchema, allow_none=True, load_default=None)


class ShopifyFulfillmentSchema(ShopPayload):
    id = ExternalId(required=True)
    order_id = ExternalId(allow_none=True, load_default=None)
    status = _text()
    shipment_status = _text()
    tracking_company = _text(CARRIER)
    tracking_number = _bounded(TRACKING_NUMBER)
    tracking_numbers = fields.List(
        fields.String(validate=validate.Length(max=TRACKING_NUMBER)),
        allow_none=True,
        load_default=None,
    )
    tracking_url = _text()
    tracking_urls = fields.List(fields.String(), allow_none=True, load_default=None)
    created_at = fields.AwareDateTime(default_timezone=UTC, allow_none=True, load_default=None)
    destination = fields.Nested(ShopifyAddressSchema, allow_none=True, load_default=None)


class ShopifyFulfillmentEventSchema(ShopifyFulfillmentSchema):
    """The body of fulfillments/create and fulfillments/update: one fulfillment."""

    order_id = ExternalId(required=True)


class ShopifyOrderSchema(ShopPayload):
    """The body of every orders/* topic: the Order resource."""

    id = ExternalId(required=True)
    name = _bounded(ORDER_NUMBER)  # "#1001": the number the customer knows
    phone = _text()
    currency = _currency()
    total_price = _money()
    financial_status = _text(STATUS)
    order_status_url = _text()
    customer_locale = _text(LANGUAGE)  # a hint for the language ("en", "pt-BR")
    buyer_accepts_marketing = fields.Boolean(allow_none=True, load_default=None)
    payment_gateway_names = fields.List(fields.String(), allow_none=True, load_default=None)
    customer = fields.Nested(ShopifyCustomerSchema, allow_none=True, load_default=None)
    shipping_address = fields.Nested(ShopifyAddressSchema, allow_none=True, load_default=None)
    billing_address = fields.Nested(ShopifyAddressSchema, allow_none=True, load_default=None)
    fulfillments = fields.List(
        fields.Nested(ShopifyFulfillmentSchema), allow_none=True, load_default=None
    )
    checkout_token = _text()  # the checkout the order was placed from (cancels its reminder)


class ShopifyCheckoutSchema(ShopPayload):
    """The body of checkouts/create and checkouts/update: the (abandoned) Checkout resource."""

    id = ExternalId(allow_none=True, load_default=None)
    token = ExternalId(required=True)
    phone = _text()
    currency = _currency()
    total_price = _money()
    abandoned_checkout_url = _text()
    completed_at = _text()
    customer_locale = _text(LANGUAGE)
    buyer_accepts_marketing = fields.Boolean(allow_none=True, load_default=None)
    customer = fields.Nested(ShopifyCustomerSchema, allow_none=True, load_default=None)
    shipping_address = fields.Nested(ShopifyAddressSchema, allow_none=True, load_default=None)
    billing_address = fields.Nested(ShopifyAddressSchema, allow_none=True, load_default=None)


# --- WooCommerce (PROVIDERS.md §4: the REST v3 order resource) -----------------------------


class WooAddressSchema(ShopPayload):
    first_name = _text(NAME)
    phone = _text()  # shipping.phone exists only on newer WooCommerce versions
    country = _text()


class WooMetaSchema(ShopPayload):
    key = _text()
    value = fields.Raw(allow_none=True, load_default=None)  # plugin data: any shape


class WooOrderSchema(ShopPayload):
    id = ExternalId(required=True)
    number = ExternalId(allow_none=True, load_default=None)  # differs from id with some plugins
    status = CutText(STATUS, required=True)  # plugins register their own statuses
    currency = _currency()
    total = _money()
    payment_method = _text()
    billing = fields.Nested(WooAddressSchema, allow_none=True, load_default=None)
    shipping = fields.Nested(WooAddressSchema, allow_none=True, load_default=None)
    meta_data = fields.List(fields.Nested(WooMetaSchema), allow_none=True, load_default=None)


# --- Generic order webhook: our published contract (see bot/intake/sources/generic.py) ----------


def _optional(field: type[fields.Field], **kwargs: Any) -> fields.Field:
    return field(allow_none=True, load_default=None, **kwargs)


_URL = {"schemes": {"http", "https"}}


class GenericTrackingSchema(Schema):
    url = _optional(fields.Url, **_URL)
    number = _optional(fields.String, validate=validate.Length(1, TRACKING_NUMBER))
    carrier = _optional(CutText, max_length=CARRIER, validate=validate.Length(min=1))


class GenericOrderSchema(Schema):
    id = fields.String(required=True, validate=validate.Length(1, 64))
    number = _optional(fields.String, validate=validate.Length(1, ORDER_NUMBER))
    total = _money(minimum=Decimal(0))
    currency = _currency()
    status_url = _optional(fields.Url, **_URL)
    tracking = _optional(fields.Nested, nested=GenericTrackingSchema)


class GenericCustomerSchema(Schema):
    phone = fields.String(required=True, validate=validate.Length(1, 64))
    marketing_consent = fields.Boolean(
        allow_none=True, load_default=None, truthy={True}, falsy={False}
    )
    name = _optional(CutText, max_length=NAME, validate=validate.Length(min=1))  # cut to 200
    language = _optional(
        fields.String,
        validate=[
            validate.Regexp(
                r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*\Z",
                error='Must be a language tag such as "hi" or "en-IN".',
            ),
            validate.Length(max=LANGUAGE),
        ],
    )
    country = _optional(
        fields.String,
        validate=validate.Regexp(
            r"[A-Z]{2}\Z", error="Must be a 2-letter upper-case ISO 3166 code."
        ),
    )


class GenericEventSchema(Schema):
    """Unknown fields are errors here (marshmallow's default, RAISE), at every level."""

    event_id = fields.String(required=True, validate=validate.Length(1, 128))
    event = fields.Enum(EventKind, by_value=True, required=True)
    occurred_at = _optional(fields.DateTime)
    order = fields.Nested(GenericOrderSchema, required=True)
    customer = fields.Nested(GenericCustomerSchema, required=True)


class ShopifyComplianceCustomer(ShopPayload):
    id = ExternalId(allow_none=True, load_default=None)
    phone = _text()


class ShopifyDataRequest(ShopPayload):
    id = ExternalId(allow_none=True, load_default=None)


class ShopifyComplianceSchema(ShopPayload):
    """customers/data_request, customers/redact, shop/redact (§9.5)."""

    shop_domain = _text()
    customer = fields.Nested(ShopifyComplianceCustomer, allow_none=True, load_default=None)
    orders_to_redact = fields.List(ExternalId(), allow_none=True, load_default=None)
    orders_requested = fields.List(ExternalId(), allow_none=True, load_default=None)
    data_request = fields.Nested(ShopifyDataRequest, allow_none=True, load_default=None)


class ShopifyConsentUpdateSchema(ShopPayload):
    """customers_marketing_consent/update, its WhatsApp twin and customers/update (§9.5)."""

    id = ExternalId(allow_none=True, load_default=None)
    phone = _text()
    sms_marketing_consent = fields.Nested(ShopifyConsentSchema, allow_none=True, load_default=None)
    whatsapp_marketing_consent = fields.Nested(
        ShopifyConsentSchema, allow_none=True, load_default=None
    )
    whats_app_marketing_consent = fields.Nested(
        ShopifyConsentSchema, allow_none=True, load_default=None
    )
