"""The one interface every order source implements, and the `OrderEvent` it produces.

A source checks a delivery's signature and turns its body into an `OrderEvent` (or says
the delivery carries nothing to act on). It never touches the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import ClassVar

from bot.core.languages import language_tag
from bot.core.models import EventKind


class SignatureError(Exception):
    """The delivery is not signed with our secret: answer 401 and store nothing."""


class PayloadError(Exception):
    """The delivery is malformed. `fields` maps each offending field to what was wrong."""

    def __init__(self, message: str, fields: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


def checkout_external_id(token: str) -> str:
    """The pseudo-order an abandoned checkout is stored as (Order.external_id)."""
    return f"checkout:{token}"[:64]


@dataclass(frozen=True, slots=True)
class OrderFacts:
    external_id: str
    number: str | None = None
    total: Decimal | None = None
    currency: str | None = None
    status: str | None = None
    status_url: str | None = None
    tracking_url: str | None = None
    tracking_number: str | None = None
    carrier: str | None = None


@dataclass(frozen=True, slots=True)
class CustomerFacts:
    phone: str | None  # as the shop sent it; normalised to E.164 later
    name: str | None = None
    language: str | None = None  # BCP 47, e.g. "hi" or "en-US" (normalised below)
    country: str | None = None  # ISO 3166 alpha-2, the default region for the phone
    # Marketing consent the shop collected (True/False), or None when it says nothing.
    marketing_consent: bool | None = None
    #: The order's other numbers, in the order they are tried after `phone` when it is
    #: not a usable one (bot/intake/outbox.py: the first that is a valid number wins).
    other_phones: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Every source's hint in one spelling ("en_in", "en-IN" -> "en-IN"); one Babel
        # does not know, nor its base language, is no hint at all.
        object.__setattr__(self, "language", language_tag(self.language))


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """A shop's order event, normalised. `kind` is None when the customer hears nothing."""

    source: str
    dedupe_key: str
    topic: str
    kind: EventKind | None
    order: OrderFacts
    customer: CustomerFacts
    external_event_id: str | None = None
    # Distinguishes legitimately repeated notifications of one kind (e.g. a second
    # shipment of the same order); empty when one notification per order and kind.
    notification_key: str = ""
    # Shopify only: the checkout this event is about, or the order was placed from, and
    # whether that checkout is still open (a cart reminder is due) or settled (cancel it).
    checkout_token: str | None = None
    checkout_open: bool = False
    #: The same event delivered under another delivery id is a duplicate too (Shopify's
    #: X-Shopify-Event-Id: one delivery per subscription); None where the key says it all.
    event_key: str | None = None
    payload: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class ComplianceRequest:
    """A shop platform's privacy request about a customer or the whole shop (Shopify's
    mandatory `customers/data_request`, `customers/redact`, `shop/redact`, §9.5)."""

    source: str
    topic: str
    dedupe_key: str
    shop_domain: str | None
    customer_id: str | None = None  # the shop's customer id
    phone: str | None = None  # as the shop sent it
    orders: tuple[str, ...] = ()  # the shop's order ids it names
    request_id: str | None = None  # data_request.id


@dataclass(frozen=True, slots=True)
class ConsentUpdate:
    """A customer's marketing consent changed at the shop, with no order (Shopify's
    `customers_marketing_consent/update`, its WhatsApp twin, `customers/update` on API
    versions before 2025-01, §9.5). `opted_in` True/False; the evidence names the source."""

    source: str
    topic: str
    dedupe_key: str
    phone: str
    opted_in: bool
    evidence: dict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Ignored:
    """A genuine, signed delivery that needs no action (e.g. WooCommerce's ping)."""

    reason: str


class Source:
    """Base class: `verify` the signature, then `parse` the body."""

    name: ClassVar[str]

    def __init__(self, secret: str | tuple[str, ...]) -> None:
        #: The secrets a delivery may be signed with: the shop's, and while a rotation
        #: lasts the previous one too (`Settings.secret_for_source`).
        self.secret = secret

    def verify(self, body: bytes, headers) -> None:
        """Raise `SignatureError` unless the raw body carries our valid signature."""
        raise NotImplementedError

    def parse(self, body: bytes, headers) -> OrderEvent | Ignored:
        """Turn a verified delivery into an `OrderEvent`; raise `PayloadError` if malformed."""
        raise NotImplementedError
