"""Replies: every catalog complete and correct, and translate() with its fallbacks."""

from __future__ import annotations

import os
import re
import shutil
import unicodedata

import pytest
from babel.messages.pofile import read_po

from bot.conversation import i18n
from bot.conversation.i18n import (
    LANGUAGE_NAMES,
    LOCALES_DIR,
    REPLIES,
    SUPPORTED_LANGUAGES,
    Translator,
    load_translations,
    translate,
)

PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def read_catalog(path):
    with path.open("rb") as file:
        return read_po(file)


def template_ids():
    return {m.id for m in read_catalog(LOCALES_DIR / "messages.pot") if m.id}


def test_the_template_holds_every_reply_and_nothing_stale():
    assert template_ids() == set(REPLIES)


def test_every_language_with_keywords_has_a_catalog_and_the_other_way_round():
    with_keywords = {p.parent.name for p in LOCALES_DIR.glob("*/keywords.toml")}
    assert set(SUPPORTED_LANGUAGES) == with_keywords
    assert len(SUPPORTED_LANGUAGES) >= 15


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_every_reply_is_translated_with_the_same_placeholders(language):
    catalog = read_catalog(LOCALES_DIR / language / "LC_MESSAGES" / "messages.po")
    messages = {m.id: m for m in catalog if m.id}
    assert set(messages) == template_ids()
    for msgid, message in messages.items():
        assert message.string.strip(), f"{language}: {msgid!r} is not translated"
        assert not message.fuzzy, f"{language}: {msgid!r} is fuzzy"
        assert sorted(PLACEHOLDER.findall(message.string)) == sorted(PLACEHOLDER.findall(msgid))
        assert message.string.count("%") == msgid.count("%"), f"{language}: stray % in {msgid!r}"


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_keywords_named_in_replies_stay_in_latin_capitals(language):
    """Customers type what the reply tells them to; the keyword files accept local words too."""
    for msgid in REPLIES:
        for keyword in re.findall(r"\b(?:START|STOP|AGENT)\b", msgid):
            assert keyword in translate(language, msgid, shop="S"), f"{language}: {msgid!r}"


def test_a_hindi_reply_is_in_devanagari_with_the_parameters_filled():
    reply = translate("hi", i18n.OPTED_OUT, shop="Kirana Ghar")
    assert "Kirana Ghar" in reply
    assert "%(" not in reply
    letters = [c for c in reply if unicodedata.category(c).startswith("L") and not c.isascii()]
    assert letters and all(unicodedata.name(c).startswith("DEVANAGARI") for c in letters)


def test_an_order_status_line_fills_the_status_word_in_the_same_language():
    status = translate("hi", "shipped")
    reply = translate("hi", i18n.ORDER_STATUS, number="#1042", status=status, when="3 जून")
    assert reply == "ऑर्डर #1042: भेज दिया गया (अपडेट: 3 जून)।"


def test_a_language_is_named_in_its_own_words():
    assert LANGUAGE_NAMES["hi"] == "हिन्दी"
    assert LANGUAGE_NAMES["de"] == "Deutsch"
    assert translate("es", i18n.LANGUAGE_CHANGED, language=LANGUAGE_NAMES["es"]).endswith(
        "en español."
    )


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("pt-BR", "Você não vai mais receber mensagens de Kirana."),
        ("pt_BR", "Você não vai mais receber mensagens de Kirana."),
        ("xx", "You won't get messages from Kirana anymore."),
        (None, "You won't get messages from Kirana anymore."),
        ("", "You won't get messages from Kirana anymore."),
    ],
)
def test_a_regional_or_unknown_language_falls_back_to_its_base_then_english(language, expected):
    assert translate(language, i18n.OPTED_OUT, shop="Kirana").startswith(expected)


def test_a_message_no_catalog_knows_is_sent_as_written():
    assert translate("hi", "Back soon") == "Back soon"


def test_a_fresh_checkout_compiles_its_catalogs_on_first_load(tmp_path):
    shutil.copytree(LOCALES_DIR, tmp_path / "locales", ignore=shutil.ignore_patterns("*.mo"))
    catalogs = load_translations(tmp_path / "locales")
    assert set(catalogs) == set(SUPPORTED_LANGUAGES)
    assert (tmp_path / "locales" / "hi" / "LC_MESSAGES" / "messages.mo").exists()
    assert catalogs["hi"].gettext("shipped") == "भेज दिया गया"


def test_a_catalog_edited_after_compiling_is_compiled_again(tmp_path):
    shutil.copytree(LOCALES_DIR / "de", tmp_path / "de")
    Translator(tmp_path)
    po = tmp_path / "de" / "LC_MESSAGES" / "messages.po"
    mo = po.with_suffix(".mo")
    po.write_text(po.read_text().replace('"versandt"', '"unterwegs"'), encoding="utf-8")
    stamp = mo.stat().st_mtime
    os.utime(po, (stamp + 10, stamp + 10))
    assert Translator(tmp_path).translate("de", "shipped") == "unterwegs"


def test_a_read_only_checkout_still_answers(tmp_path):
    shutil.copytree(LOCALES_DIR / "fr", tmp_path / "fr", ignore=shutil.ignore_patterns("*.mo"))
    folder = tmp_path / "fr" / "LC_MESSAGES"
    folder.chmod(0o555)
    try:
        assert Translator(tmp_path).translate("fr", "delivered") == "livrée"
    finally:
        folder.chmod(0o755)
