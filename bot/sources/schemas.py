"""What an order delivery must look like: raw body -> JSON object -> marshmallow schema.

Shop payloads are read leniently (unknown fields excluded, nulls allowed) because shops add
fields with every API version; the generic schema is our own published contract and strict.
Every failure becomes a `PayloadError` whose `fields` names each offending field by path.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC
from typing import Any, Protocol

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from bot.errors import flatten_errors, unstorable_path
from bot.jsonbody import InvalidJson, decode_json
from bot.models import EventKind
from bot.sources.base import PayloadError


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


def require_header(headers: HeaderMap, name: str) -> str:
    """The non-blank value of header `name`, or a `PayloadError` naming it."""
    value = (header(headers, name) or "").strip()
    if not value:
        raise PayloadError(f"missing header {name}", {name: ["Missing header."]})
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


def first_present(*values: Any) -> str | None:
    """The first value that is a non-blank string, unchanged (phones stay raw)."""
    for value in values:
        if isinstance(value, str) and value.strip():
            return value
    return None


class ExternalId(fields.Field):
    """A shop's id, number or text, always kept as an exact string (never a float)."""

    default_error_messages = {"invalid": "Not a valid id.", "too_long": "Longer than 64."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip():
            raise self.make_error("invalid")
        if len(str(value)) > 64:  # Order.external_id is 64 characters
            raise self.make_error("too_long")
        return str(value).strip()


def _text(**kwargs: Any) -> fields.String:
    return fields.String(allow_none=True, load_default=None, **kwargs)


def _money() -> fields.Decimal:
    return fields.Decimal(allow_none=True, load_default=None)


class ShopPayload(Schema):
    """A shop's own resource: we read a handful of fields and ignore the rest."""

    class Meta:
        unknown = EXCLUDE


# --- Shopify (PROVIDERS.md §3.3) -------------------------------------------------------


class ShopifyAddressSchema(ShopPayload):
    first_name = _text()
    name = _text()
    phone = _text()
    country_code = _text()


class ShopifyConsentSchema(ShopPayload):
    state = _text()  # subscribed | not_subscribed | unsubscribed | pending ... (§3.3)
    opt_in_level = _text()
    consent_updated_at = _text()


class ShopifyCustomerSchema(ShopPayload):
    first_name = _text()
    phone = _text()
    sms_marketing_consent = fields.Nested(ShopifyConsentSchema, allow_none=True, load_default=None)


class ShopifyFulfillmentSchema(ShopPayload):
    id = ExternalId(required=True)
    order_id = ExternalId(allow_none=True, load_default=None)
    status = _text()
    shipment_status = _text()
    tracking_company = _text()
    tracking_number = _text()
    tracking_numbers = fields.List(fields.String(), allow_none=True, load_default=None)
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
    name = _text()
    phone = _text()
    currency = _text()
    total_price = _money()
    financial_status = _text()
    order_status_url = _text()
    customer_locale = _text()
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
    currency = _text()
    total_price = _money()
    abandoned_checkout_url = _text()
    completed_at = _text()
    customer_locale = _text()
    buyer_accepts_marketing = fields.Boolean(allow_none=True, load_default=None)
    customer = fields.Nested(ShopifyCustomerSchema, allow_none=True, load_default=None)
    shipping_address = fields.Nested(ShopifyAddressSchema, allow_none=True, load_default=None)
    billing_address = fields.Nested(ShopifyAddressSchema, allow_none=True, load_default=None)


# --- WooCommerce (PROVIDERS.md §4: the REST v3 order resource) -----------------------------


class WooAddressSchema(ShopPayload):
    first_name = _text()
    phone = _text()  # shipping.phone exists only on newer WooCommerce versions
    country = _text()


class WooMetaSchema(ShopPayload):
    key = _text()
    value = fields.Raw(allow_none=True, load_default=None)  # plugin data: any shape


class WooOrderSchema(ShopPayload):
    id = ExternalId(required=True)
    number = ExternalId(allow_none=True, load_default=None)  # differs from id with some plugins
    status = fields.String(required=True)
    currency = _text()
    total = _money()
    payment_method = _text()
    billing = fields.Nested(WooAddressSchema, allow_none=True, load_default=None)
    shipping = fields.Nested(WooAddressSchema, allow_none=True, load_default=None)
    meta_data = fields.List(fields.Nested(WooMetaSchema), allow_none=True, load_default=None)


# --- Generic order webhook: our published contract (see bot/sources/generic.py) ----------


def _optional(field: type[fields.Field], **kwargs: Any) -> fields.Field:
    return field(allow_none=True, load_default=None, **kwargs)


_URL = {"schemes": {"http", "https"}}


class GenericTrackingSchema(Schema):
    url = _optional(fields.Url, **_URL)
    number = _optional(fields.String, validate=validate.Length(1, 128))
    carrier = _optional(fields.String, validate=validate.Length(1, 128))


class GenericOrderSchema(Schema):
    id = fields.String(required=True, validate=validate.Length(1, 64))
    number = _optional(fields.String, validate=validate.Length(1, 64))
    # Orders.total is NUMERIC(14, 2): a larger total is the sender's 400, not our 503.
    total = _optional(
        fields.Decimal, validate=validate.Range(min=0, max=10**12, max_inclusive=False)
    )
    currency = _optional(
        fields.String,
        validate=validate.Regexp(
            r"[A-Z]{3}\Z", error="Must be a 3-letter upper-case ISO 4217 code."
        ),
    )
    status_url = _optional(fields.Url, **_URL)
    tracking = _optional(fields.Nested, nested=GenericTrackingSchema)


class GenericCustomerSchema(Schema):
    phone = fields.String(required=True, validate=validate.Length(1, 64))
    marketing_consent = fields.Boolean(
        allow_none=True, load_default=None, truthy={True}, falsy={False}
    )
    name = _optional(fields.String, validate=validate.Length(1, 200))
    language = _optional(
        fields.String,
        validate=validate.Regexp(
            r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*\Z",
            error='Must be a language tag such as "hi" or "en-IN".',
        ),
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
