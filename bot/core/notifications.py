"""The shop's notification map: which template an order event sends, and its parameters.

Loaded from a TOML file (see `bot/core/notifications.toml`) and validated at start-up, so a
typo in a parameter name stops the process instead of failing every send.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from decimal import Decimal

from babel import Locale
from babel.numbers import format_currency

from bot.core.config import ConfigError
from bot.core.languages import base_language, money_locale, template_code
from bot.core.models import Category, Customer, EventKind, Order

PARAMETERS = frozenset(
    {
        "customer_name",
        "order_number",
        "order_total",
        "tracking_url",
        "tracking_number",
        "carrier",
        "order_status_url",
        "status_payload",
        "cod_confirm_payload",
        "cod_cancel_payload",
    }
)
#: What the COD confirmation's quick-reply buttons carry: "COD:CONFIRM:<order id>" and
#: "COD:CANCEL:<order id>" (Dakiya's own order id: unique across shops and sources).
COD_PAYLOAD = "COD:"
#: The message kind of the reminder a COD order nobody answered gets (bot/intake/reminders.py).
COD_REMINDER = "cod_reminder"
#: Stages after which a COD answer (or its absence) changes nothing at the shop.
COD_TOO_LATE = frozenset(
    {
        EventKind.SHIPPED,
        EventKind.OUT_FOR_DELIVERY,
        EventKind.DELIVERED,
        EventKind.CANCELLED,
        EventKind.REFUNDED,
    }
)
BUTTON_TYPES = frozenset({"url", "quick_reply"})


class MissingParameter(Exception):
    """A template parameter has no value for this order and no fallback."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no value for template parameter {name!r}")
        self.name = name


@dataclass(frozen=True)
class ButtonSpec:
    index: int
    sub_type: str
    value: str


@dataclass(frozen=True)
class TemplateSpec:
    kind: EventKind
    template: str
    languages: tuple[str, ...]
    category: Category = Category.UTILITY
    header: tuple[str, ...] = ()
    body: tuple[str, ...] = ()
    buttons: tuple[ButtonSpec, ...] = ()


@dataclass(frozen=True)
class NotificationMap:
    specs: dict[EventKind, TemplateSpec]
    fallbacks: dict[str, str] = field(default_factory=dict)
    #: {(template, language): category} as Meta last said (template_category_update);
    #: language "" when Meta named none.
    meta_categories: dict[tuple[str, str], str] = field(default_factory=dict)

    def for_kind(self, kind: EventKind | None) -> TemplateSpec | None:
        return self.specs.get(kind) if kind else None

    def category_for(self, spec: TemplateSpec, language: str) -> Category:
        """What a message of `spec` in `language` sends as: marketing when the map says
        so or Meta has made the template marketing; never less strict than the map (a
        template Meta moved out of marketing still needs marketing consent here)."""
        said = self.meta_categories.get((spec.template, language))
        said = said or self.meta_categories.get((spec.template, ""))
        return Category.MARKETING if said == Category.MARKETING else spec.category

    def events_sending(self, template: str, language: str = "") -> list[str]:
        """The order events whose template is `template` (in `language`, when given)."""
        return [
            str(kind)
            for kind, spec in self.specs.items()
            if spec.template == template
            and (not language or template_code(language) in map(template_code, spec.languages))
        ]


def load_notification_map(path: str) -> NotificationMap:
    """Read and validate the map; raise ConfigError naming the first bad entry."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"NOTIFICATIONS_FILE {path}: {exc}") from exc
    return parse_notification_map(data, source=path)


def parse_notification_map(data: dict, source: str = "notifications") -> NotificationMap:
    specs = {}
    for name, entry in (data.get("events") or {}).items():
        where = f"{source}: events.{name}"
        try:
            kind = EventKind(name)
        except ValueError:
            raise ConfigError(f"{where}: unknown event kind") from None
        if not entry.get("enabled", True):
            continue
        if not entry.get("template") or not entry.get("languages"):
            raise ConfigError(f"{where}: needs `template` and `languages`")
        buttons = tuple(
            ButtonSpec(int(b["index"]), b["sub_type"], b["value"]) for b in entry.get("buttons", [])
        )
        names = [*entry.get("header", []), *entry.get("body", []), *(b.value for b in buttons)]
        unknown = [n for n in names if n not in PARAMETERS]
        if unknown:
            raise ConfigError(f"{where}: unknown parameters {', '.join(unknown)}")
        if any(b.sub_type not in BUTTON_TYPES for b in buttons):
            raise ConfigError(f"{where}: button sub_type must be url or quick_reply")
        try:
            category = Category(entry.get("category", "utility"))
        except ValueError:
            raise ConfigError(f"{where}: category must be utility or marketing") from None
        specs[kind] = TemplateSpec(
            kind=kind,
            template=entry["template"],
            languages=tuple(entry["languages"]),
            category=category,
            header=tuple(entry.get("header", [])),
            body=tuple(entry.get("body", [])),
            buttons=buttons,
        )
    return NotificationMap(specs=specs, fallbacks=dict(data.get("fallbacks") or {}))


def choose_language(preferred: list[str | None], approved: tuple[str, ...], default: str) -> str:
    """The approved template language closest to what the customer reads, as Meta's code.

    Tries each preference exactly ("en-US" -> "en_US"), then by its base language
    ("hi-IN" -> "hi", "en-IN" -> "en"), then the shop's default, then the template's first
    language. The answer is written as Meta's send body wants it ("en", "en_US", "pt_BR").
    """
    codes = [template_code(code) for code in approved]
    by_base: dict[str, str] = {}
    for code in codes:
        by_base.setdefault(base_language(code), code)
    for wanted in [*preferred, default]:
        if not wanted:
            continue
        if template_code(wanted) in codes:
            return template_code(wanted)
        if base_language(wanted) in by_base:
            return by_base[base_language(wanted)]
    return codes[0]


def format_money(amount: Decimal | None, currency: str | None, locale: Locale | str) -> str | None:
    """`amount` in `currency` as `locale` writes it (₹12,50,000.00 for en_IN, 1.234,50 € for
    de); a tag Babel lacks is read by its base language, else English."""
    if amount is None or not currency:
        return None
    if not isinstance(locale, Locale):
        locale = money_locale(locale, None, "en")
    return format_currency(amount, currency, locale=locale)


def customer_locale(customer: Customer, hint: str | None, default: str) -> Locale:
    """The locale the customer's amounts are written in: their language (else the shop's
    `hint` for it, else DEFAULT_LANGUAGE), with the region it names or their number's."""
    return money_locale(customer.language or hint, customer.phone, default)


def render_params(spec: TemplateSpec, values: dict[str, str | None], fallbacks: dict) -> dict:
    """The template's parameters as stored on a message: {"header", "body", "buttons"}."""

    def value(name: str) -> str:
        text = values.get(name) or fallbacks.get(name)
        if not text:
            raise MissingParameter(name)
        return str(text)

    return {
        "header": [value(n) for n in spec.header],
        "body": [value(n) for n in spec.body],
        "buttons": [
            {"index": b.index, "sub_type": b.sub_type, "value": value(b.value)}
            for b in spec.buttons
        ],
    }


def order_values(order: Order, customer: Customer, locale: Locale | str) -> dict[str, str | None]:
    """Every template parameter's value for this order, amounts written as `locale` does
    (`customer_locale`: the customer's, not the template's language)."""
    number = order.number or order.external_id
    return {
        "customer_name": customer.name,
        "order_number": number,
        "order_total": format_money(order.total, order.currency, locale),
        "tracking_url": order.tracking_url,
        "tracking_number": order.tracking_number,
        "carrier": order.carrier,
        "order_status_url": order.status_url,
        "status_payload": f"STATUS:{number}",
        "cod_confirm_payload": f"{COD_PAYLOAD}CONFIRM:{order.id}",
        "cod_cancel_payload": f"{COD_PAYLOAD}CANCEL:{order.id}",
    }
