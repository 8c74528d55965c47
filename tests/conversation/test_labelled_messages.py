"""The labelled evaluation set (tests/data/intents, `make eval-intents`), checked on
every run: no labelled message opts anyone out by mistake, every shipped opt-out keyword
opts out, natural opt-outs and order questions are understood at the targets, and a
customer writing in a non-Latin script is answered in it."""

from __future__ import annotations

import pytest

from bot.conversation.normalise import matching_form
from tests.intent_eval import LABELS, accuracy, evaluate, labelled, languages

LANGUAGES = languages()
MINIMUM = {"opt_out": 40, "near_miss": 20, "order_status": 20, "handoff": 10}


@pytest.fixture(scope="module")
def reports():
    return {language: evaluate(language) for language in LANGUAGES}


def test_the_set_covers_every_language_with_replies():
    from bot.conversation.i18n import SUPPORTED_LANGUAGES

    assert set(LANGUAGES) == set(SUPPORTED_LANGUAGES)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_set_is_large_enough_and_each_message_has_one_label(language):
    lists = labelled(language)
    assert set(lists) == set(LABELS)
    for label, least in MINIMUM.items():
        assert len(lists[label]) >= least, f"{language}: only {len(lists[label])} {label}"
    seen: dict[str, str] = {}
    for label, texts in lists.items():
        for text in texts:
            key = matching_form(text)
            assert key, f"{language}/{label}: {text!r} is empty once normalised"
            assert seen.setdefault(key, label) == label, f"{text!r} is {seen[key]} and {label}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_labelled_message_opts_anyone_out_by_mistake(reports, language):
    assert reports[language].false_opt_outs() == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_shipped_opt_out_keyword_opts_out(reports, language):
    assert reports[language].keyword_misses == []


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(("label", "target"), [("opt_out", 0.95), ("order_status", 0.95)])
def test_natural_phrasing_is_understood(reports, language, label, target):
    report = reports[language]
    assert report.recall(label) >= target, report.misses(label)


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_customer_writing_in_a_non_latin_script_is_answered_in_it(reports, language):
    report = reports[language]
    assert accuracy(report, "native", "script") == 1.0, report.wrong_script["native"]
