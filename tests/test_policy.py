"""The send-time policy, as a table and as properties."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.models import Category, Reason
from bot.policy.policy import CustomerFacts, MessageFacts, Send, Suppress, decide

NOW = datetime(2026, 11, 25, 12, 0)
RECENT = NOW - timedelta(hours=2)
STALE = NOW - timedelta(hours=25)


@pytest.mark.parametrize(
    ("customer", "message", "expected"),
    [
        (CustomerFacts(), MessageFacts(Category.UTILITY), Send()),
        (CustomerFacts(opted_out=True), MessageFacts(Category.UTILITY), Suppress(Reason.OPTED_OUT)),
        (
            CustomerFacts(),
            MessageFacts(Category.UTILITY, has_valid_phone=False),
            Suppress(Reason.INVALID_PHONE),
        ),
        (CustomerFacts(), MessageFacts(Category.MARKETING), Suppress(Reason.NO_MARKETING_CONSENT)),
        (CustomerFacts(marketing_opt_in=True), MessageFacts(Category.MARKETING), Send()),
        (
            CustomerFacts(opted_out=True, marketing_opt_in=True),
            MessageFacts(Category.MARKETING),
            Suppress(Reason.OPTED_OUT),
        ),
        (
            CustomerFacts(last_inbound_at=RECENT),
            MessageFacts(Category.SERVICE, free_form=True),
            Send(),
        ),
        (
            CustomerFacts(last_inbound_at=STALE),
            MessageFacts(Category.SERVICE, free_form=True),
            Suppress(Reason.WINDOW_CLOSED),
        ),
        (
            CustomerFacts(),
            MessageFacts(Category.SERVICE, free_form=True),
            Suppress(Reason.WINDOW_CLOSED),
        ),
        (
            CustomerFacts(opted_out=True, last_inbound_at=RECENT),
            MessageFacts(Category.SERVICE, free_form=True, opt_out_confirmation=True),
            Send(),
        ),
        (
            CustomerFacts(opted_out=True, last_inbound_at=RECENT),
            MessageFacts(Category.SERVICE, free_form=True),
            Suppress(Reason.OPTED_OUT),
        ),
    ],
)
def test_decision_table(customer, message, expected):
    assert decide(customer, message, NOW) == expected


facts = st.builds(
    CustomerFacts,
    opted_out=st.booleans(),
    marketing_opt_in=st.booleans(),
    last_inbound_at=st.none() | st.datetimes(min_value=NOW - timedelta(days=3), max_value=NOW),
)
messages = st.builds(
    MessageFacts,
    category=st.sampled_from(Category),
    has_valid_phone=st.booleans(),
    free_form=st.booleans(),
    opt_out_confirmation=st.just(False),
)


@given(facts, messages)
def test_an_opted_out_customer_is_never_sent_anything_but_the_confirmation(customer, message):
    if customer.opted_out:
        assert isinstance(decide(customer, message, NOW), Suppress)


@given(facts, messages)
def test_free_form_text_never_goes_out_of_the_window(customer, message):
    if message.free_form and (
        customer.last_inbound_at is None or NOW - customer.last_inbound_at >= timedelta(hours=24)
    ):
        assert isinstance(decide(customer, message, NOW), Suppress)


# --- quiet hours, gaps, caps, tier, duplicates ---------------------------------------

from zoneinfo import ZoneInfo, available_timezones  # noqa: E402

from bot.core.config import Settings  # noqa: E402
from bot.core.config_rules import (  # noqa: E402
    Caps,
    QuietHours,
    Rules,
    parse_quiet_hours,
    rules_from_settings,
)
from bot.policy.policy import Counters, Defer  # noqa: E402

NIGHT = QuietHours(time(21), time(9))
RULES = Rules(
    quiet_hours={Category.MARKETING: NIGHT},
    caps={Category.MARKETING: Caps(daily=1, weekly=3)},
    min_gap=timedelta(seconds=6),
    tier_limit=250,
    duplicate_window=timedelta(hours=24),
)
IST = CustomerFacts(marketing_opt_in=True, timezone="Asia/Kolkata")
MARKETING = MessageFacts(Category.MARKETING)
UTILITY = MessageFacts(Category.UTILITY)


def at_ist(hour: int, minute: int = 0) -> datetime:
    """A naive-UTC moment that is hour:minute in India (+05:30) on 25 Nov 2026."""
    local = datetime(2026, 11, 25, hour, minute, tzinfo=ZoneInfo("Asia/Kolkata"))
    return local.astimezone(UTC).replace(tzinfo=None)


@pytest.mark.parametrize(
    ("now", "counters", "message", "expected"),
    [
        (at_ist(12), Counters(), MARKETING, Send()),
        (
            at_ist(22),
            Counters(),
            MARKETING,
            Defer(at_ist(9) + timedelta(days=1), Reason.QUIET_HOURS),
        ),
        (at_ist(3), Counters(), MARKETING, Defer(at_ist(9), Reason.QUIET_HOURS)),
        (at_ist(22), Counters(), UTILITY, Send()),  # order updates go out at any hour
        (
            at_ist(12),
            Counters(sent_today=1),
            MARKETING,
            Defer(datetime(2026, 11, 25, 18, 30), Reason.CAP_DAILY),
        ),  # local midnight, in UTC
        (
            at_ist(12),
            Counters(sent_this_week=3, oldest_this_week=at_ist(12) - timedelta(days=2)),
            MARKETING,
            Defer(at_ist(12) + timedelta(days=5), Reason.CAP_WEEKLY),
        ),
        (at_ist(12), Counters(sent_today=5), UTILITY, Send()),  # no cap on order updates
        (
            at_ist(12),
            Counters(last_sent_at=at_ist(12) - timedelta(seconds=2)),
            UTILITY,
            Defer(at_ist(12) + timedelta(seconds=4), Reason.PAIR_RATE),
        ),
        (at_ist(12), Counters(duplicate_sent=True), UTILITY, Suppress(Reason.DUPLICATE)),
        (
            at_ist(12),
            Counters(tier_used=250, tier_frees_at=at_ist(11)),
            UTILITY,
            Defer(at_ist(11) + timedelta(hours=24), Reason.TIER_LIMIT),
        ),
        (at_ist(12), Counters(tier_used=250, tier_has_customer=True), UTILITY, Send()),
    ],
)
def test_delays_and_duplicates(now, counters, message, expected):
    assert decide(IST, message, now, counters, RULES) == expected


def test_replies_inside_the_window_skip_quiet_hours_caps_and_tier():
    customer = CustomerFacts(last_inbound_at=at_ist(22), timezone="Asia/Kolkata")
    counters = Counters(sent_today=9, tier_used=250, last_sent_at=at_ist(22, 5))
    assert (
        decide(
            customer, MessageFacts(Category.SERVICE, free_form=True), at_ist(22, 6), counters, RULES
        )
        == Send()
    )


def test_a_customer_inside_the_window_does_not_use_the_tier():
    customer = CustomerFacts(last_inbound_at=at_ist(11), timezone="Asia/Kolkata")
    assert decide(customer, UTILITY, at_ist(12), Counters(tier_used=250), RULES) == Send()


def test_an_erased_customer_gets_nothing_not_even_a_confirmation():
    customer = CustomerFacts(erased=True, opted_out=True, last_inbound_at=at_ist(11))
    message = MessageFacts(Category.SERVICE, free_form=True, opt_out_confirmation=True)
    assert decide(customer, message, at_ist(12), Counters(), RULES) == Suppress(Reason.ERASED)


ZONES = sorted(available_timezones() - {"Factory", "localtime"})


@given(
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31)),
    st.sampled_from(
        [
            "Asia/Kolkata",
            "Asia/Kathmandu",
            "America/New_York",
            "Europe/London",
            "Australia/Lord_Howe",
            "America/St_Johns",
            "Pacific/Chatham",
            *ZONES,
        ]
    ),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 23),
    st.integers(0, 59),
)
def test_marketing_never_goes_out_in_quiet_hours_in_any_zone(now, zone, h1, m1, h2, m2):
    if (h1, m1) == (h2, m2):
        return
    quiet = QuietHours(time(h1, m1), time(h2, m2))
    rules = Rules(quiet_hours={Category.MARKETING: quiet})
    customer = CustomerFacts(marketing_opt_in=True, timezone=zone)
    decision = decide(customer, MARKETING, now, Counters(), rules)
    local = now.replace(tzinfo=UTC).astimezone(ZoneInfo(zone))
    if isinstance(decision, Send):
        assert not quiet.is_quiet(local.time())
    else:
        assert decision.reason == Reason.QUIET_HOURS
        assert now < decision.until <= now + timedelta(hours=25)
        landed = decision.until.replace(tzinfo=UTC).astimezone(ZoneInfo(zone))
        assert not quiet.is_quiet(landed.time())


def test_quiet_hours_end_across_a_dst_change():
    # New York springs forward on 8 Mar 2026: 09:00 EDT is 13:00 UTC, not 14:00.
    customer = CustomerFacts(marketing_opt_in=True, timezone="America/New_York")
    night = datetime(2026, 3, 8, 5, 0)  # 00:00 EST
    decision = decide(customer, MARKETING, night, Counters(), RULES)
    assert decision == Defer(datetime(2026, 3, 8, 13, 0), Reason.QUIET_HOURS)


def test_nepal_quarter_hour_offset_is_respected():
    customer = CustomerFacts(marketing_opt_in=True, timezone="Asia/Kathmandu")  # +05:45
    decision = decide(customer, MARKETING, datetime(2026, 11, 25, 0, 0), Counters(), RULES)
    assert decision == Defer(datetime(2026, 11, 25, 3, 15), Reason.QUIET_HOURS)


@pytest.mark.parametrize("value", ["9-21", "25:00-09:00", "21:00", "21:00-21:00", "nine to five"])
def test_malformed_quiet_hours_are_refused_by_name(value):
    with pytest.raises(ValueError, match="QUIET_HOURS_MARKETING"):
        parse_quiet_hours(value, "QUIET_HOURS_MARKETING")


def test_rules_come_from_settings():
    rules = rules_from_settings(Settings(messaging_tier="2000", quiet_hours_utility="22:30-07:00"))
    assert rules.tier_limit == 2000
    assert rules.quiet_hours[Category.UTILITY] == QuietHours(time(22, 30), time(7))
    assert rules.caps[Category.MARKETING] == Caps(1, 3)


def test_unknown_tier_is_refused():
    with pytest.raises(ValueError, match="MESSAGING_TIER"):
        rules_from_settings(Settings(messaging_tier="lots"))


@pytest.mark.parametrize(
    ("category", "age", "expected"),
    [
        (Category.MARKETING, timedelta(minutes=59), Send()),
        (Category.MARKETING, timedelta(hours=1), Suppress(Reason.EXPIRED)),
        (Category.UTILITY, timedelta(days=3), Send()),  # an order update never expires
    ],
)
def test_a_marketing_message_expires_at_the_shops_time_to_live(category, age, expected):
    from bot.core.config_rules import Rules

    rules = Rules(marketing_ttl=timedelta(hours=1))
    message = MessageFacts(category, created_at=NOW - age)
    assert decide(CustomerFacts(marketing_opt_in=True), message, NOW, rules=rules) == expected
    assert decide(CustomerFacts(marketing_opt_in=True), message, NOW) == Send()  # no TTL set
