"""Segments: a group of customers described as data (JSON), so a campaign can store it,
an admin can preview its size, and the same definition always selects the same way.
"""

from __future__ import annotations

import operator
from datetime import date, datetime, time
from functools import reduce

import phonenumbers
from babel.numbers import list_currencies
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema
from peewee import fn

from bot.core import languages, phones, search
from bot.core.fields import WholeNumber
from bot.core.models import Category, Customer, EventKind, InboundMessage, Order, Reason
from bot.policy import privacy

#: A country (ISO 3166 alpha-2) phone numbers can be read in: an enum in the document.
REGION = validate.OneOf(phones.REGIONS, error="not a country code such as IN or US")


class SegmentSchema(Schema):
    """A segment definition; every filter is optional and they all must hold."""

    class Meta:
        unknown = RAISE

    tags_any = fields.List(
        fields.String(validate=validate.Length(1, 64)), validate=validate.Length(1, 50)
    )
    languages = fields.List(
        fields.String(validate=validate.Length(1, 16)),
        validate=validate.Length(1, 50),
        metadata={"description": '"en" matches en, en-IN, en-GB...; "en-IN" only en-IN'},
    )
    countries = fields.List(
        fields.String(validate=REGION),
        validate=validate.Length(1, 50),
        metadata={"description": "from the phone number's country calling code"},
    )
    marketing_opt_in = fields.Boolean()
    last_order_after = fields.Date(metadata={"description": "last order on or after (UTC)"})
    last_order_before = fields.Date(metadata={"description": "last order before (UTC)"})
    min_orders = WholeNumber(validate=validate.Range(1, 1_000_000))
    min_spend = fields.Decimal(
        places=2,
        validate=validate.Range(0, 10**12),
        metadata={
            "description": "completed orders (not cancelled, refunded, voided, failed, or an "
            "abandoned checkout) adding up to at least this in one currency: `spend_currency`, "
            "or else any one currency (amounts in different currencies are never added)"
        },
    )
    spend_currency = fields.String(
        validate=validate.OneOf(sorted(list_currencies()), error="not an ISO 4217 code (INR)"),
        metadata={"description": "the currency `min_spend` is in (ISO 4217)"},
    )
    has_replied = fields.Boolean(metadata={"description": "ever wrote to us"})

    @validates_schema
    def check_dates(self, data: dict, **kwargs) -> None:
        after, before = data.get("last_order_after"), data.get("last_order_before")
        if after and before and before <= after:
            raise ValidationError("must be after last_order_after", "last_order_before")
        if "spend_currency" in data and "min_spend" not in data:
            raise ValidationError("only with min_spend", "spend_currency")


def validate_segment(definition: dict) -> dict:
    """The definition as stored (JSON values); ValidationError names the bad field."""
    return SegmentSchema().dump(SegmentSchema().load(definition))


def segment_query(definition: dict):
    """The customers `definition` selects; opted-out customers never are."""
    return matching(definition).where(Customer.opted_out == False)  # noqa: E712


def matching(definition: dict):
    """The customers `definition`'s filters select, opted out or not."""
    data = SegmentSchema().load(definition)
    query = Customer.select()
    if "tags_any" in data:
        tags = [search.has_tag(Customer.tags, tag) for tag in data["tags_any"]]
        query = query.where(reduce(operator.or_, tags))
    if "languages" in data:
        query = query.where(speaks_any(data["languages"]))
    if "countries" in data:
        codes = {phonenumbers.country_code_for_region(region) for region in data["countries"]}
        query = query.where(
            reduce(operator.or_, [Customer.phone.startswith(f"+{code}") for code in codes])
        )
    if "marketing_opt_in" in data:
        query = query.where(Customer.marketing_opt_in == data["marketing_opt_in"])
    for orders in order_filters(data):
        query = query.where(Customer.id.in_(orders))
    if "has_replied" in data:
        replied = InboundMessage.select(InboundMessage.customer).where(
            InboundMessage.customer.is_null(False)
        )
        inside = Customer.id.in_(replied) | Customer.last_inbound_at.is_null(False)
        query = query.where(inside if data["has_replied"] else ~inside)
    return query


def speaks_any(wanted: list[str]):
    """Customers whose stored (BCP 47) language is one of `wanted`: a bare language
    matches it with any region or script ("en": en, en-IN, en-GB), a tag with a region
    only itself ("en-IN"). Spelling does not matter ("en_in" is "en-IN")."""
    exact, bases = set(), set()
    for value in wanted:
        tag = languages.language_tag(value) or value
        (exact if languages.has_region(tag) else bases).add(tag)
    terms = [Customer.language.in_(sorted(exact))] if exact else []
    for base in sorted(bases):
        terms += [Customer.language == base, Customer.language.startswith(f"{base}-")]
    return reduce(operator.or_, terms)


def order_filters(data: dict) -> list:
    """Subqueries of the customer ids whose orders meet the order filters (none: [])."""
    having = []
    if "last_order_after" in data:
        having.append(fn.MAX(Order.created_at) >= _midnight(data["last_order_after"]))
    if "last_order_before" in data:
        having.append(fn.MAX(Order.created_at) < _midnight(data["last_order_before"]))
    if "min_orders" in data:
        having.append(fn.COUNT(Order.id) >= data["min_orders"])
    filters = []
    if having:
        filters.append(
            Order.select(Order.customer)
            .where(Order.customer.is_null(False))
            .group_by(Order.customer)
            .having(reduce(operator.and_, having))
        )
    if "min_spend" in data:
        spent = Order.select(Order.customer).where(
            Order.customer.is_null(False) & Order.total.is_null(False) & completed_order()
        )
        if "spend_currency" in data:
            spent = spent.where(Order.currency == data["spend_currency"])
        # Per currency: 1,000 INR and 20 USD are never added up.
        filters.append(
            spent.group_by(Order.customer, Order.currency).having(
                fn.SUM(Order.total) >= float(data["min_spend"])
            )
        )
    return filters


# --- what counts as spend ----------------------------------------------------------------

#: Stages and shop statuses (Shopify's financial status, WooCommerce's status, a generic
#: shop's word; compared in lower case, "wc-" prefix and all) of an order that was not
#: completed: no spend. A partial refund still counts in full (we never hear the amount).
NOT_COMPLETED_STAGES = (EventKind.CANCELLED.value, EventKind.REFUNDED.value)
NOT_COMPLETED_STATUSES = (
    "cancelled",
    "canceled",
    "refunded",
    "voided",
    "failed",
    "abandoned",
    "wc-cancelled",
    "wc-refunded",
    "wc-failed",
)
#: Shopify's abandoned checkouts are stored as pseudo-orders "checkout:<token>": a completed
#: one is the same purchase as its real order, so it never counts either.
CHECKOUT_PREFIX = "checkout:"


def completed_order():
    """An Order expression: the order counts as spend."""
    return (
        (Order.stage.is_null() | Order.stage.not_in(NOT_COMPLETED_STAGES))
        & (Order.status.is_null() | fn.LOWER(Order.status).not_in(NOT_COMPLETED_STATUSES))
        & ~Order.external_id.startswith(CHECKOUT_PREFIX)
    )


def is_completed(order: Order) -> bool:
    """The same test in Python, for orders already loaded."""
    return (
        order.stage not in NOT_COMPLETED_STAGES
        and (order.status or "").lower() not in NOT_COMPLETED_STATUSES
        and not order.external_id.startswith(CHECKOUT_PREFIX)
    )


# --- preview -------------------------------------------------------------------------------

#: Why a customer the segment selects gets no message, in the order they are checked
#: (each customer is counted under the first that applies).
EXCLUDED = (Reason.INVALID_PHONE, Reason.ERASED, Reason.OPTED_OUT, Reason.NO_MARKETING_CONSENT)
#: Phones looked up in the suppression list per query.
ERASED_CHUNK = 1000


def reachable(phone: str | None, user_id: str | None) -> bool:
    """A message can go to this customer: their stored number is still a valid E.164
    number, or they have none and are known by a BSUID (a username user, §9.1)."""
    if phone:
        return phones.to_e164(phone, None) == phone
    return bool(user_id)


def preview(definition: dict, category: str = Category.MARKETING, salt: str = "") -> dict:
    """What a campaign of `category` to `definition` would send right now: `count`, the
    customers who would get a message, `matched`, those the filters select, and
    `excluded`, the others by reason (the same rules the campaign and its sender apply:
    opted out and, for marketing, no consent are never targeted; an erased number or an
    invalid one is suppressed). Quiet hours and caps only delay, so they do not count;
    a missing template parameter depends on the campaign, not the segment."""
    rows = matching(definition).select(
        Customer.phone, Customer.user_id, Customer.opted_out, Customer.marketing_opt_in
    )
    customers = list(rows.tuples())
    # A customer's key: their number, or their BSUID when they have no number.
    valid = [phone or user_id for phone, user_id, _, _ in customers if reachable(phone, user_id)]
    erased: set[str] = set()
    for start in range(0, len(valid), ERASED_CHUNK):
        erased |= privacy.suppressed_among(valid[start : start + ERASED_CHUNK], salt)
    excluded = dict.fromkeys((reason.value for reason in EXCLUDED), 0)
    valid_set = set(valid)
    for phone, user_id, opted_out, marketing_opt_in in customers:
        key = phone or user_id
        if key not in valid_set:
            excluded[Reason.INVALID_PHONE] += 1
        elif key in erased:
            excluded[Reason.ERASED] += 1
        elif opted_out:
            excluded[Reason.OPTED_OUT] += 1
        elif category == Category.MARKETING and not marketing_opt_in:
            excluded[Reason.NO_MARKETING_CONSENT] += 1
    return {
        "count": len(customers) - sum(excluded.values()),
        "matched": len(customers),
        "excluded": excluded,
    }


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0))
