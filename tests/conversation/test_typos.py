"""One slip of the finger (bot/conversation/typos.py)."""

from __future__ import annotations

import pytest

from bot.conversation.typos import one_slip, one_slip_from

KEYS = {4: (("stop", "en"),), 11: (("unsubscribe", "en"),)}


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("stpo", "stop", True),  # neighbours swapped
        ("sop", "stop", True),  # one left out
        ("stoop", "stop", True),  # one too many
        ("shop", "stop", True),  # a wrong letter
        ("stop", "stop", False),  # the same word is no slip
        ("spot", "stop", False),  # two apart
        ("stopping", "stop", False),
    ],
)
def test_one_slip(a, b, expected):
    assert one_slip(a, b) is expected


@pytest.mark.parametrize(
    ("key", "substitutions", "found"),
    [
        ("unsubcribe", True, ("unsubscribe", "en")),
        ("stpo", False, ("stop", "en")),
        ("shop", False, None),  # a short key may not be a wrong letter
        ("unsubscribed", True, None),  # another form of the word
        ("stops", True, None),
        ("ठहरो", True, None),  # Latin letters only
    ],
)
def test_one_slip_from_a_keyword(key, substitutions, found):
    assert one_slip_from(key, KEYS, substitutions) == found
