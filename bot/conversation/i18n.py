"""Replies in the customer's language, from the gettext catalogs in `locales/`.

Compiled `.mo` files are not kept in git: a catalog whose `.mo` is missing or older than
its `.po` is compiled when loaded, so a fresh clone answers without a build step.
"""

from __future__ import annotations

import os
import tempfile
from functools import cache
from io import BytesIO
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALES_DIR = Path(__file__).resolve().parents[2] / "locales"
DOMAIN = "messages"
FALLBACK_LANGUAGE = "en"


def N_(msgid: str) -> str:
    """Marks `msgid` for `pybabel extract` without translating it (see locales/README.md)."""
    return msgid


# The replies, in English; each has a translation in every catalog. Placeholders are
# python-format names filled by `translate(language, msgid, **params)`.
OPTED_OUT = N_("You won't get messages from %(shop)s anymore. Reply START to resume.")
OPTED_IN = N_("You're subscribed again to messages from %(shop)s. Reply STOP to stop.")
HELP = N_(
    "This is %(shop)s on WhatsApp. Send your order number to see its status, "
    "STOP to stop messages, or AGENT to talk to a person."
)
ORDER_STATUS = N_("Order %(number)s is %(status)s (updated %(when)s).")
TRACKING_LINK = N_("Track it here: %(url)s")
ORDER_NOT_FOUND = N_(
    "We couldn't find order %(reference)s for this number. Please check the number and try again."
)
RECENT_ORDERS = N_("Your recent orders:")
NO_OPEN_ORDERS = N_("We couldn't find any open orders for this number.")
LANGUAGE_CHANGED = N_("OK, we'll write to you in %(language)s from now on.")
HANDED_OFF = N_("Thanks! Someone from %(shop)s will reply here soon.")
SHARE_NUMBER = N_(
    "To show your orders, %(shop)s needs the phone number you ordered with. "
    "Tap the button below to share it."
)
STOP_QUESTION = N_(
    "Do you want to stop getting messages from %(shop)s? Tap a button below, or reply STOP."
)
STOP_BUTTON = N_("Stop messages")  # button titles: at most 20 characters (WhatsApp)
KEEP_BUTTON = N_("Keep them")
KEPT = N_("OK, you'll keep getting messages from %(shop)s. Reply STOP any time.")
COD_CONFIRMED = N_("Thank you! Your order %(number)s is confirmed and will be shipped soon.")
COD_CANCELLED = N_("Your order %(number)s is cancelled, as you asked.")
COD_TOO_LATE = N_("Your order %(number)s is already %(status)s, so nothing was changed.")
COD_ALREADY = N_("We already have your answer for order %(number)s: %(status)s.")

# Order status words, shown in ORDER_STATUS and in the recent-orders list.
STATUS_WORDS = (
    N_("placed"),
    N_("confirmed"),
    N_("awaiting cash-on-delivery confirmation"),
    N_("shipped"),
    N_("out for delivery"),
    N_("delivered"),
    N_("cancelled"),
    N_("refunded"),
)

REPLIES = (
    OPTED_OUT,
    OPTED_IN,
    HELP,
    ORDER_STATUS,
    TRACKING_LINK,
    ORDER_NOT_FOUND,
    RECENT_ORDERS,
    NO_OPEN_ORDERS,
    LANGUAGE_CHANGED,
    HANDED_OFF,
    SHARE_NUMBER,
    STOP_QUESTION,
    STOP_BUTTON,
    KEEP_BUTTON,
    KEPT,
    COD_CONFIRMED,
    COD_CANCELLED,
    COD_TOO_LATE,
    COD_ALREADY,
    *STATUS_WORDS,
)


def load_translations(locales_dir: str | Path) -> dict[str, Translations]:
    """Every `<locales_dir>/<lang>/LC_MESSAGES/messages.po`, compiled if need be, by language."""
    catalogs = {}
    for po_path in sorted(Path(locales_dir).glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        language = po_path.parent.parent.name
        catalogs[language] = _load_compiled(po_path)
    return catalogs


class Translator:
    """The catalogs under one `locales` folder, with English as the fallback."""

    def __init__(self, locales_dir: str | Path = LOCALES_DIR) -> None:
        self.catalogs = load_translations(locales_dir)

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.catalogs)

    def translate(self, language: str | None, msgid: str, /, **params: object) -> str:
        """`msgid` in `language` ("hi", "pt-BR" -> "pt"), else in English, else as written."""
        catalog = self._catalog(language) or self.catalogs.get(FALLBACK_LANGUAGE)
        text = catalog.gettext(msgid) if catalog else msgid
        return text % params if params else text

    def _catalog(self, language: str | None) -> Translations | None:
        if not language:
            return None
        code = language.replace("-", "_")
        return self.catalogs.get(code) or self.catalogs.get(code.split("_")[0].lower())


@cache
def default_translator() -> Translator:
    return Translator(LOCALES_DIR)


def translate(language: str | None, msgid: str, /, **params: object) -> str:
    """`msgid` in `language` from the repository's catalogs; see `Translator.translate`."""
    return default_translator().translate(language, msgid, **params)


def _languages_with_catalogs(locales_dir: Path) -> tuple[str, ...]:
    return tuple(
        sorted(p.parent.parent.name for p in locales_dir.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
    )


def _own_name(language: str) -> str:
    try:
        return Locale.parse(language).get_display_name(language) or language
    except (UnknownLocaleError, ValueError):
        return language


SUPPORTED_LANGUAGES: tuple[str, ...] = _languages_with_catalogs(LOCALES_DIR)
# Each language's name for itself, for LANGUAGE_CHANGED: "हिन्दी", "español", "Deutsch".
LANGUAGE_NAMES: dict[str, str] = {code: _own_name(code) for code in SUPPORTED_LANGUAGES}


def _load_compiled(po_path: Path) -> Translations:
    mo_path = po_path.with_suffix(".mo")
    if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
        with mo_path.open("rb") as mo_file:
            return Translations(mo_file, domain=DOMAIN)
    compiled = _compile(po_path)
    try:
        _write_atomically(mo_path, compiled)
    except OSError:
        pass  # a read-only checkout still answers, from the catalog compiled in memory
    return Translations(BytesIO(compiled), domain=DOMAIN)


def _compile(po_path: Path) -> bytes:
    with po_path.open("rb") as po_file:
        catalog = read_po(po_file, locale=po_path.parent.parent.name, domain=DOMAIN)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    return buffer.getvalue()


def _write_atomically(path: Path, data: bytes) -> None:
    """Write via a temporary file and a rename, so a worker never reads half a `.mo`."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
