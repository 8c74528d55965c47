"""The rate card: what WhatsApp charges per delivered message, by the recipient's country
and the message's pricing category (PROVIDERS.md §9.2), kept as data.

The card comes from RATE_CARD_FILE (bot/core/rate_card.toml by default) until an admin
saves one (`PUT /admin/api/rate-card`; bot/core/runtime.py keeps it); deleting the
admin's card brings the file's back. Spend is estimated when it is read, from the card
in force then, so an edited card re-prices the past too (README "Spend and the rate card").
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from marshmallow import Schema, ValidationError, fields, validate

#: A country's own rates, or "*": every country the card does not list.
ANY_COUNTRY = "*"

#: Meta's pricing categories (§9.2) a card may price.
CATEGORIES = (
    "marketing",
    "marketing_lite",
    "utility",
    "authentication",
    "authentication_international",
    "service",
    "referral_conversion",
    "group_marketing",
    "group_utility",
    "group_service",
    "general_purpose_ai",
)
#: A category a card does not price costs what this one does (the Marketing Messages
#: API's `marketing_lite` is billed as marketing; a group message as its kind).
PRICED_AS = {
    "marketing_lite": "marketing",
    "group_marketing": "marketing",
    "group_utility": "utility",
    "group_service": "service",
}


PRICE = r"^\d{1,4}(\.\d{1,6})?$"


class Price(fields.String):
    """A price per message as a decimal string ("0.1150"), exact (never a float), at most
    1000 and six places."""

    def __init__(self, **kwargs) -> None:
        metadata = {"description": "per message, 0 to 1000", "example": "0.1150", "pattern": PRICE}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> Decimal:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not re.fullmatch(PRICE, text) or Decimal(text) > 1000:
            raise ValidationError('a price such as "0.1150", from 0 to 1000')
        return Decimal(text)

    def _serialize(self, value, attr, obj, **kwargs) -> str | None:
        return None if value is None else str(value)


class RatesOf(fields.Dict):
    """One country's rates: {category: price per message}."""

    def __init__(self, **kwargs) -> None:
        super().__init__(
            keys=fields.String(
                validate=validate.OneOf(CATEGORIES, error="not a pricing category: {input}")
            ),
            values=Price(),
            **kwargs,
        )


class RateCardSchema(Schema):
    currency = fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Z]{3}$", error="an ISO 4217 code such as INR or USD"),
        metadata={"example": "INR"},
    )
    effective = fields.Date(
        required=True, metadata={"description": "the day these rates took effect"}
    )
    source = fields.String(
        required=True,
        validate=validate.Length(min=1, max=1000),
        metadata={"description": "where the rates come from (a URL, a date)"},
    )
    rates = fields.Dict(
        required=True,
        keys=fields.String(
            validate=validate.Regexp(
                r"^([A-Z]{2}|\*)$", error='an ISO 3166 country code such as IN, or "*"'
            )
        ),
        values=RatesOf(),
        metadata={"description": 'per country (or "*"), per pricing category'},
    )


@dataclass(frozen=True, slots=True)
class RateCard:
    currency: str
    effective: date
    source: str
    rates: dict[str, dict[str, Decimal]]
    #: "file" or "admin", and for an admin's card who saved it when.
    origin: str = "file"
    updated_by: str | None = None
    updated_at: datetime | None = None

    def rate(self, country: str | None, category: str) -> Decimal | None:
        """The price of one billable message of `category` to `country`; None when the
        card does not say (the message is unpriced, not free)."""
        for key in (category, PRICED_AS.get(category)):
            if key is None:
                continue
            for where in (country or "", ANY_COUNTRY):
                price = self.rates.get(where, {}).get(key)
                if price is not None:
                    return price
        return None

    def as_json(self) -> dict:
        return {
            **RateCardSchema().dump(self),
            "origin": self.origin,
            "updated_by": self.updated_by,
            "updated_at": self.updated_at.isoformat() + "Z" if self.updated_at else None,
        }


def parse(data: dict, **origin) -> RateCard:
    """A card from its data (the file's, an admin's JSON); ValueError naming every field
    that is wrong."""
    try:
        loaded = RateCardSchema().load(data)
    except ValidationError as exc:
        raise ValueError(f"rate card: {exc.messages}") from exc
    return RateCard(**loaded, **origin)


def from_file(path: str) -> RateCard:
    try:
        with open(path, "rb") as fh:
            return parse(tomllib.load(fh))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"RATE_CARD_FILE {path}: {exc}") from exc
