"""What Dakiya answers, in which language: pure functions from facts to localised text.

Texts are gettext messages (locales/<lang>/LC_MESSAGES/messages.po); dates and times are
formatted by Babel for the customer's locale and time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_datetime
from babel.languages import get_official_languages

from bot.conversation.i18n import (
    COD_ALREADY,
    COD_CANCELLED,
    COD_CONFIRMED,
    COD_TOO_LATE,
    KEEP_BUTTON,
    KEPT,
    STOP_BUTTON,
    STOP_QUESTION,
    SUPPORTED_LANGUAGES,
    translate,
)
from bot.core import phones
from bot.core.languages import EXPLICIT_SOURCES
from bot.core.models import EventKind

#: The status word for each stage an order reaches (msgids in the catalogs).
STAGE_WORDS = {
    EventKind.PLACED: "placed",
    EventKind.CONFIRMED: "confirmed",
    EventKind.COD_CONFIRMATION: "awaiting cash-on-delivery confirmation",
    EventKind.SHIPPED: "shipped",
    EventKind.OUT_FOR_DELIVERY: "out for delivery",
    EventKind.DELIVERED: "delivered",
    EventKind.CANCELLED: "cancelled",
    EventKind.REFUNDED: "refunded",
}
CLOSED_STAGES = frozenset({EventKind.DELIVERED, EventKind.CANCELLED, EventKind.REFUNDED})


@dataclass(frozen=True, slots=True)
class OrderView:
    """What a customer may see of one of their own orders."""

    number: str
    stage: str | None
    updated_at: datetime  # naive UTC
    tracking_url: str | None = None


def supported(language: str | None) -> str | None:
    """`language` reduced to a language we have replies in, or None."""
    if not language:
        return None
    base = language.replace("-", "_").split("_")[0].lower()
    return base if base in SUPPORTED_LANGUAGES else None


def country_language(key: str | None) -> str | None:
    """The first official language of the country of a number, or of a BSUID (its "IN."
    prefix names the country, PROVIDERS.md §9.1), that we have replies in."""
    for language in get_official_languages(phones.country(key) or "", de_facto=True):
        if supported(language):
            return supported(language)
    return None


@dataclass(frozen=True, slots=True)
class LanguageEvidence:
    """What is known of the language to answer a customer in, strongest first."""

    chosen: str | None = None  # the language-switch command, or an admin
    written_in: str | None = None  # the message being answered (language_id)
    recent: str | None = None  # their latest earlier message with letters
    shop_hint: str | None = None  # the storefront locale of their orders
    key: str | None = None  # their number or BSUID: its country
    default: str = "en"  # DEFAULT_LANGUAGE

    @classmethod
    def of(
        cls, customer, written_in: str | None, default: str, weak: bool = False
    ) -> LanguageEvidence:
        """`weak`: `written_in` is only English read from a few Latin words ("ok"), so
        the language of their recent messages goes first."""
        explicit = customer.language_source in EXPLICIT_SOURCES
        recent = customer.written_language
        if weak and recent:
            written_in, recent = recent, written_in
        return cls(
            chosen=customer.language if explicit else None,
            written_in=written_in,
            recent=recent,
            shop_hint=None if explicit else customer.language,
            key=customer.phone or customer.user_id,
            default=default,
        )


def reply_language(evidence: LanguageEvidence) -> str:
    """The first piece of evidence naming a language we have replies in: an explicit
    choice, the language of the message, of their recent messages, the shop's hint, the
    number's country, DEFAULT_LANGUAGE (README "Which language Dakiya answers in")."""
    return (
        supported(evidence.chosen)
        or supported(evidence.written_in)
        or supported(evidence.recent)
        or supported(evidence.shop_hint)
        or country_language(evidence.key)
        or supported(evidence.default)
        or "en"
    )


def language_name(language: str) -> str:
    """The language's own name for itself ("हिन्दी", "español")."""
    return Locale.parse(language).get_display_name(language) or language


def opted_out(language: str, shop: str) -> str:
    return translate(
        language, "You won't get messages from %(shop)s anymore. Reply START to resume.", shop=shop
    )


def opted_in(language: str, shop: str) -> str:
    return translate(
        language,
        "You're subscribed again to messages from %(shop)s. Reply STOP to stop.",
        shop=shop,
    )


def help_text(language: str, shop: str) -> str:
    return translate(
        language,
        "This is %(shop)s on WhatsApp. Send your order number to see its status, "
        "STOP to stop messages, or AGENT to talk to a person.",
        shop=shop,
    )


def language_switched(language: str) -> str:
    return translate(
        language,
        "OK, we'll write to you in %(language)s from now on.",
        language=language_name(language),
    )


def handed_over(language: str, shop: str) -> str:
    return translate(language, "Thanks! Someone from %(shop)s will reply here soon.", shop=shop)


def share_number(language: str, shop: str) -> str:
    """The text on WhatsApp's "share phone number" button, for a username user."""
    return translate(
        language,
        "To show your orders, %(shop)s needs the phone number you ordered with. "
        "Tap the button below to share it.",
        shop=shop,
    )


def order_not_found(language: str, reference: str) -> str:
    return translate(
        language,
        "We couldn't find order %(reference)s for this number. "
        "Please check the number and try again.",
        reference=reference,
    )


def order_status(order: OrderView, language: str, timezone: str) -> str:
    """ "Order #1042 is shipped (updated 25 Nov 2026, 5:10:02 pm)." and its tracking link."""
    stage = STAGE_WORDS.get(order.stage, "placed") if order.stage else "placed"
    when = format_datetime(
        order.updated_at.replace(tzinfo=UTC),
        format="medium",
        tzinfo=ZoneInfo(timezone),
        locale=Locale.parse(language),
    )
    text = translate(
        language,
        "Order %(number)s is %(status)s (updated %(when)s).",
        number=order.number,
        status=translate(language, stage),
        when=when,
    )
    if order.tracking_url and order.stage not in CLOSED_STAGES:
        text += "\n" + translate(language, "Track it here: %(url)s", url=order.tracking_url)
    return text


def recent_orders(orders: list[OrderView], language: str, timezone: str) -> str:
    if not orders:
        return translate(language, "We couldn't find any open orders for this number.")
    lines = [order_status(order, language, timezone) for order in orders]
    return "\n\n".join([translate(language, "Your recent orders:"), *lines])


def stop_question(language: str, shop: str) -> str:
    """Asked when a message may mean "stop" but does not say it clearly."""
    return translate(language, STOP_QUESTION, shop=shop)


def stop_button(language: str) -> str:
    """A quick-reply button title: at most 20 characters (WhatsApp's limit)."""
    return translate(language, STOP_BUTTON)[:20]


def keep_button(language: str) -> str:
    return translate(language, KEEP_BUTTON)[:20]


def kept(language: str, shop: str) -> str:
    return translate(language, KEPT, shop=shop)


def cod_answered(language: str, outcome_kind: str, number: str, status: str | None) -> str:
    """The answer to a tap on a COD confirmation's button (bot/conversation/cod.py)."""
    word = translate(language, STAGE_WORDS.get(status, status or ""))
    if outcome_kind == "too_late":
        return translate(language, COD_TOO_LATE, number=number, status=word)
    if outcome_kind == "already":
        return translate(language, COD_ALREADY, number=number, status=word)
    if status == "cancelled":
        return translate(language, COD_CANCELLED, number=number)
    return translate(language, COD_CONFIRMED, number=number)
