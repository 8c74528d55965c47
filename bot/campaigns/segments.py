"""Segments: a group of customers described as data (JSON), so a campaign can store it,
an admin can preview its size, and the same definition always selects the same way.
"""

from __future__ import annotations

import operator
from datetime import date, datetime, time
from functools import reduce

import phonenumbers
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema
from peewee import fn

from bot.core import languages, phones, search
from bot.core.fields import WholeNumber
from bot.core.models import Customer, InboundMessage, Order

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
    min_spend = fields.Decimal(places=2, validate=validate.Range(0, 10**12))
    has_replied = fields.Boolean(metadata={"description": "ever wrote to us"})

    @validates_schema
    def check_dates(self, data: dict, **kwargs) -> None:
        after, before = data.get("last_order_after"), data.get("last_order_before")
        if after and before and before <= after:
            raise ValidationError("must be after last_order_after", "last_order_before")


def validate_segment(definition: dict) -> dict:
    """The definition as stored (JSON values); ValidationError names the bad field."""
    return SegmentSchema().dump(SegmentSchema().load(definition))


def segment_query(definition: dict):
    """The customers `definition` selects; opted-out customers never are."""
    data = SegmentSchema().load(definition)
    query = Customer.select().where(Customer.opted_out == False)  # noqa: E712
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
    orders = order_filter(data)
    if orders is not None:
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


def order_filter(data: dict):
    """Customer ids whose orders meet the order filters, or None when there are none."""
    having = []
    if "last_order_after" in data:
        having.append(fn.MAX(Order.created_at) >= _midnight(data["last_order_after"]))
    if "last_order_before" in data:
        having.append(fn.MAX(Order.created_at) < _midnight(data["last_order_before"]))
    if "min_orders" in data:
        having.append(fn.COUNT(Order.id) >= data["min_orders"])
    if "min_spend" in data:
        # Totals are summed as stored: a shop selling in several currencies should add a
        # currency filter before relying on this.
        having.append(fn.COALESCE(fn.SUM(Order.total), 0) >= float(data["min_spend"]))
    if not having:
        return None
    return (
        Order.select(Order.customer)
        .where(Order.customer.is_null(False))
        .group_by(Order.customer)
        .having(reduce(operator.and_, having))
    )


def preview(definition: dict) -> int:
    """How many customers `definition` selects right now."""
    return segment_query(definition).count()


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0))
