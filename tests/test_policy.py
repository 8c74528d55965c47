"""The send-time policy, as a table and as properties."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.models import Category, Reason
from bot.policy import CustomerFacts, MessageFacts, Send, Suppress, decide

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
