"""Language tags: one spelling for what a customer reads, and the locale money is written in.

Shops, the generic schema, the admin API, CSV files and the conversation spell the same
language differently (`en-IN`, `en_IN`, `en_in`, `EN`). Every entry point stores the
BCP 47 form Babel (CLDR) canonicalises to: `en-IN`, `pt-BR`, `zh-Hant-TW`, `hi`. Template
languages are another thing: they are Meta's codes (`en`, `en_US`, `pt_BR`), sent as
approved (`template_code`).

Core level: it imports only Babel and phonenumbers.
"""

from __future__ import annotations

from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.localedata import exists

from bot.core import phones

#: Babel's pseudo-locales: they parse, but no customer reads them.
NOT_A_LANGUAGE = frozenset({"root", "und"})


def parse_language(value: str) -> str:
    """`value` as a BCP 47 tag Babel knows ("en_in" -> "en-IN", "PT-br" -> "pt-BR");
    ValueError when it is not one (the entry points that check input say so)."""
    text = value.strip().replace("_", "-")
    try:
        if text.split("-")[0].lower() in NOT_A_LANGUAGE:
            raise ValueError(text)
        locale = Locale.parse(text, sep="-")
        # Babel fills in a likely region ("iw" -> he_IL, "en-ZZ" -> en_US): keep only the
        # region the value named, so "en" stays "en" and its country comes from elsewhere.
        if locale.territory and locale.territory not in text.upper().split("-")[1:]:
            locale = Locale(locale.language, script=locale.script, variant=locale.variant)
    except (UnknownLocaleError, ValueError, TypeError):
        raise ValueError(f"not a known language: {value!r}") from None
    return tag(locale)


def language_tag(value: str | None) -> str | None:
    """`parse_language` for a hint (a shop's `customer_locale`, a keyword's language):
    the tag, else its base language when Babel knows that ("en-ZZ" -> "en"), else None."""
    if not value or not value.strip():
        return None
    try:
        return parse_language(value)
    except ValueError:
        pass
    try:
        return parse_language(value.strip().replace("_", "-").split("-")[0])
    except ValueError:
        return None


def base_language(value: str) -> str:
    """The language without script or region: "en-IN" -> "en", "pt_BR" -> "pt"."""
    return value.replace("_", "-").split("-")[0].lower()


def has_region(value: str) -> bool:
    """Whether the tag names more than a language ("en-IN", "zh-Hant")."""
    return "-" in value.replace("_", "-")


def template_code(value: str) -> str:
    """A template language as Meta writes it in the send body: "en", "en_US", "pt_BR"."""
    return value.replace("-", "_")


def tag(locale: Locale) -> str:
    """The BCP 47 tag of a Babel locale: Locale("en", "IN") -> "en-IN"."""
    return str(locale).replace("_", "-")


def money_locale(language: str | None, phone: str | None, default: str) -> Locale:
    """The locale to write amounts in for a customer who reads `language`, on `phone`.

    The language with its region (`en-IN` groups lakhs: ₹12,50,000.00; `de` writes
    1.234,50 €; `pt-BR` R$ 1.999,90). A tag Babel lacks falls back to its base language,
    then to `default` (DEFAULT_LANGUAGE), then to English. When the tag names no region,
    the number's country supplies it if Babel has that combination: `en` on an Indian
    number is `en_IN`, `pt` on a Portuguese one `pt_PT`; `de` on an Indian number stays `de`.
    """
    return _money_locale(language, phones.country(phone) if phone else None, default)


@lru_cache(maxsize=1024)  # the order webhook's path: a handful of (language, region) pairs
def _money_locale(language: str | None, region: str | None, default: str) -> Locale:
    chosen = language_tag(language) or language_tag(default) or "en"
    locale = Locale.parse(chosen, sep="-")
    if locale.territory is None and region:
        candidate = "_".join(p for p in (locale.language, locale.script, region) if p)
        if exists(candidate):
            return Locale.parse(candidate)
    return locale


#: A customer's `language_source` that makes their language a choice, not a hint.
EXPLICIT_SOURCES = frozenset({"customer", "admin"})


def preferred_languages(customer, hint: str | None = None) -> list[str | None]:
    """The languages to write to `customer` in, strongest evidence first (issue 15): the
    one they or an admin chose, the one they last wrote in, the shop's hint (their
    stored storefront locale, then `hint`, this order's). For a template's language;
    a reply also weighs the message it answers (bot/conversation/replies.py)."""
    explicit = customer.language_source in EXPLICIT_SOURCES
    return [
        customer.language if explicit else None,
        customer.written_language,
        None if explicit else customer.language,
        hint,
    ]
