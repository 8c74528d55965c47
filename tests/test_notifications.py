"""The shop's event -> template map: validated at start-up, rendered per customer."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.core.config import DEFAULT_NOTIFICATIONS_FILE, ConfigError
from bot.core.models import EventKind
from bot.core.notifications import (
    MissingParameter,
    choose_language,
    format_money,
    load_notification_map,
    parse_notification_map,
    render_params,
)


def test_bundled_map_covers_every_order_event():
    book = load_notification_map(DEFAULT_NOTIFICATIONS_FILE)
    assert set(book.specs) == set(EventKind)


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        ({"events": {"teleported": {"template": "t", "languages": ["en"]}}}, "unknown event kind"),
        (
            {"events": {"shipped": {"template": "t", "languages": ["en"], "body": ["shoe_size"]}}},
            "shoe_size",
        ),
        ({"events": {"shipped": {"languages": ["en"]}}}, "template"),
        (
            {"events": {"shipped": {"template": "t", "languages": ["en"], "category": "spam"}}},
            "category",
        ),
        (
            {
                "events": {
                    "shipped": {
                        "template": "t",
                        "languages": ["en"],
                        "buttons": [{"index": 0, "sub_type": "call", "value": "order_number"}],
                    }
                }
            },
            "sub_type",
        ),
    ],
)
def test_bad_map_entries_stop_start_up_with_a_reason(data, complaint):
    with pytest.raises(ConfigError, match=complaint):
        parse_notification_map(data)


def test_disabled_event_sends_nothing():
    book = parse_notification_map({"events": {"placed": {"enabled": False}}})
    assert book.for_kind(EventKind.PLACED) is None


@pytest.mark.parametrize(
    ("preferred", "approved", "expected"),
    [
        (["hi"], ("en", "hi"), "hi"),
        (["hi-IN"], ("en", "hi"), "hi"),
        (["en-US"], ("en_US", "hi"), "en_US"),
        (["en-GB"], ("en_US", "hi"), "en_US"),
        (["ta"], ("en", "hi"), "en"),  # falls back to the shop's default
        ([None, "hi"], ("en", "hi"), "hi"),
        (["ta"], ("hi", "mr"), "hi"),  # default not approved either: the first approved one
    ],
)
def test_template_language_follows_the_customer(preferred, approved, expected):
    assert choose_language(preferred, approved, "en") == expected


@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", "₹1,299.00"), ("hi", "₹1,299.00"), ("de", "1.299,00\xa0₹"), ("ta", "₹1,299.00")],
)
def test_money_is_formatted_by_babel_for_the_language(language, expected):
    assert format_money(Decimal("1299.00"), "INR", language) == expected


def test_large_amounts_use_indian_grouping_for_indian_languages():
    assert format_money(Decimal("1250000"), "INR", "hi") == "₹12,50,000.00"


def test_missing_value_uses_the_fallback_or_names_the_parameter():
    book = parse_notification_map(
        {
            "fallbacks": {"customer_name": "Customer"},
            "events": {
                "shipped": {
                    "template": "t",
                    "languages": ["en"],
                    "body": ["customer_name", "tracking_url"],
                }
            },
        }
    )
    spec = book.for_kind(EventKind.SHIPPED)
    params = render_params(
        spec, {"customer_name": None, "tracking_url": "https://t/1"}, book.fallbacks
    )
    assert params["body"] == ["Customer", "https://t/1"]
    with pytest.raises(MissingParameter, match="tracking_url"):
        render_params(spec, {"customer_name": "Asha"}, book.fallbacks)
