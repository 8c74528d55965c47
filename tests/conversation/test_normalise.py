"""normalise(): one comparable form for whatever a customer types."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.conversation.normalise import matching_form, normalise


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("STOP", "stop"),
        ("  Stop.  ", "stop"),
        ("STOP!!!", "stop"),
        ("stop 🙏", "stop"),
        ("🛑stop🛑", "stop"),
        ("👍🏽 ok", "ok"),
        ("❤️", ""),
        ("👨‍👩‍👧 stop", "stop"),
        ("1️⃣0️⃣4️⃣2️⃣", "1042"),
        ("StOp\n\tplease\u00a0", "stop please"),
        ("Straße", "strasse"),
        ("ＳＴＯＰ", "stop"),
        ("band-karo", "band karo"),
        ("don't", "don t"),
        ("#1042", "1042"),
        ("₹1,499", "1 499"),
    ],
)
def test_case_punctuation_emoji_and_spacing_do_not_matter(text, expected):
    assert normalise(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("१०४२", "1042"),  # Devanagari
        ("১০৪২", "1042"),  # Bengali
        ("૧૦૪૨", "1042"),  # Gujarati
        ("੧੦੪੨", "1042"),  # Gurmukhi
        ("௧௦௪௨", "1042"),  # Tamil
        ("౧౦౪౨", "1042"),  # Telugu
        ("೧೦೪೨", "1042"),  # Kannada
        ("൧൦൪൨", "1042"),  # Malayalam
        ("١٠٤٢", "1042"),  # Arabic-Indic
        ("۱۰۴۲", "1042"),  # Extended Arabic-Indic (Persian, Urdu)
        ("１０４２", "1042"),  # full width
        ("ऑर्डर १०४२ कहाँ है?", "ऑर्डर 1042 कहाँ है"),
    ],
)
def test_native_digits_become_ascii(text, expected):
    assert normalise(text) == expected


@pytest.mark.parametrize(
    "word",
    ["बंद करो", "নিরাপদ", "நிறுத்து", "ఆపండి", "ગુજરાતી", "ನಿಲ್ಲಿಸಿ", "നിർത്തുക", "إلغاء", "ऑर्डर"],
)
def test_indic_and_arabic_letters_keep_their_marks(word):
    assert normalise(word) == word


def test_invisible_joiners_are_dropped_so_both_spellings_compare_equal():
    assert normalise("मेसेज\u200cलु") == normalise("मेसेजलु")
    assert normalise("\u200bstop\u200d") == "stop"


def test_matching_form_ignores_latin_accents_but_not_indic_vowel_signs():
    assert matching_form("ARRÊT") == matching_form("arret") == "arret"
    assert matching_form("Parar promoções") == "parar promocoes"
    assert matching_form("बंद") != matching_form("बद")


def test_matching_form_ignores_arabic_vowel_marks_and_letter_variants():
    assert matching_form("إِلْغَاء") == matching_form("الغاء")
    assert matching_form("مساعدة") == matching_form("مساعده")


def test_matching_form_reads_both_malayalam_chillu_spellings_alike():
    assert matching_form("നിർത്തുക") == matching_form("നിര്\u200dത്തുക")


@given(st.text())
def test_normalise_never_raises_and_leaves_no_outer_whitespace(text):
    result = normalise(text)
    assert result == result.strip()
    assert "  " not in result


@given(st.text())
def test_normalise_is_idempotent(text):
    once = normalise(text)
    assert normalise(once) == once


@given(st.text())
def test_matching_form_is_idempotent(text):
    once = matching_form(text)
    assert matching_form(once) == once


@given(st.text())
def test_normalised_digits_are_ascii(text):
    assert all(c.isascii() for c in normalise(text) if c.isdecimal())
