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

from bot.conversation.i18n import SUPPORTED_LANGUAGES, translate
from bot.core import phones
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


def reply_language(
    preference: str | None, keyword_language: str | None, phone: str | None, default: str
) -> str:
    """The customer's stored preference, else the language of the keyword they used,
    else their number's country, else the shop's default (DESIGN.md, Conversation)."""
    return (
        supported(preference)
        or supported(keyword_language)
        or country_language(phone)
        or supported(default)
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
