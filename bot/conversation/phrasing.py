"""What a sentence asks for, from the `locales/<lang>/keywords.toml` "sentence" sections:
rules over data, matched as whole words anywhere in the message (locales/README.md).

Why rules and not a trained classifier: an opt-out acted on wrongly silences a customer
and one missed keeps messaging someone who said stop, so every decision must be
explainable by a phrase a person can read, fix and test, in 15 languages with a few
hundred phrasings each, which is too little to train on honestly. Decisions, in order:

1. a `keep_phrases` phrase ("don't stop", "band mat karo"): never an opt-out;
2. an `opt_out_phrases` phrase, or a `stop_verbs` word with a `message_words` word:
   a clear opt-out;
3. an `agent_phrases` phrase: a person is asked for;
4. an `order_status` phrase (intents.py), or a `shipment_words` word with a
   `status_cues` word: an order-status question;
5. an `unclear_opt_out` phrase: ask, with buttons, whether to stop.

Matching is on the message's `matching_form` with letter runs collapsed ("stoppp",
"pleeease"), as word n-grams looked up in sets: a few microseconds a message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from bot.conversation.normalise import matching_form

#: The sentence sections of a keyword file, matched as whole words anywhere.
SENTENCE_SECTIONS = (
    "opt_out_phrases",
    "stop_verbs",
    "message_words",
    "keep_phrases",
    "unclear_opt_out",
    "agent_phrases",
    "shipment_words",
    "status_cues",
    "romanised",
)
MAX_WORDS = 8  # the longest phrase looked for, in words

_RUNS = re.compile(r"(.)\1+")


class Reading(StrEnum):
    OPT_OUT = "opt_out"
    UNCLEAR_OPT_OUT = "unclear_opt_out"
    AGENT = "agent"
    ORDER_STATUS = "order_status"


@dataclass(frozen=True, slots=True)
class Understood:
    reading: Reading
    language: str | None  # the language of the phrase that decided it
    phrase: str | None = None  # for the evidence a consent change stores


@dataclass(frozen=True)
class Phrasebook:
    """Each sentence section: {collapsed phrase: languages listing it}."""

    sections: dict[str, dict[str, tuple[str, ...]]]

    def found(self, section: str, grams: dict[str, int]) -> list[tuple[str, tuple[str, ...]]]:
        index = self.sections.get(section, {})
        return [(gram, index[gram]) for gram in grams if gram in index]


def collapse(form: str) -> str:
    """Letter runs as one letter: "stoppp" and "stop", "message" and "mesage" meet."""
    return _RUNS.sub(r"\1", form)


def build_phrasebook(per_language: dict[str, dict[str, list[str]]]) -> Phrasebook:
    """{language: {section: phrases in matching_form}} as one Phrasebook."""
    sections: dict[str, dict[str, list[str]]] = {name: {} for name in SENTENCE_SECTIONS}
    for language, found in sorted(per_language.items()):
        for name in SENTENCE_SECTIONS:
            for phrase in found.get(name, []):
                languages = sections[name].setdefault(collapse(phrase), [])
                if language not in languages:
                    languages.append(language)
    return Phrasebook(
        {name: {p: tuple(langs) for p, langs in index.items()} for name, index in sections.items()}
    )


def word_grams(text: str) -> dict[str, int]:
    """Every run of up to MAX_WORDS words of the message (collapsed), with where it starts."""
    words = collapse(matching_form(text)).split()
    grams: dict[str, int] = {}
    for start in range(len(words)):
        for size in range(1, min(MAX_WORDS, len(words) - start) + 1):
            grams.setdefault(" ".join(words[start : start + size]), start)
    return grams


def read_sentence(grams: dict[str, int], book: Phrasebook, rank) -> list[Understood]:
    """What one message's `grams` (`word_grams`) may mean, most decisive first (an
    opt-out before a person, before an order question, before an unclear opt-out: the
    caller puts its own order-status phrases before the unclear one); `rank` orders
    languages."""

    def best(hits: list[tuple[str, tuple[str, ...]]]) -> tuple[str, str]:
        phrase, languages = max(hits, key=lambda hit: len(hit[0]))
        return phrase, min(languages, key=rank)

    readings: list[Understood] = []
    keep = bool(book.found("keep_phrases", grams))
    if not keep:
        verbs, objects = book.found("stop_verbs", grams), book.found("message_words", grams)
        if clear := book.found("opt_out_phrases", grams):
            phrase, language = best(clear)
            readings.append(Understood(Reading.OPT_OUT, language, phrase))
        elif verbs and objects:
            phrase, language = best(verbs)
            readings.append(Understood(Reading.OPT_OUT, language, f"{phrase} … {best(objects)[0]}"))
    if agent := book.found("agent_phrases", grams):
        phrase, language = best(agent)
        readings.append(Understood(Reading.AGENT, language, phrase))
    shipment, cues = book.found("shipment_words", grams), book.found("status_cues", grams)
    if shipment and cues:
        phrase, language = best(shipment + cues)
        readings.append(Understood(Reading.ORDER_STATUS, language, phrase))
    if not keep and (unclear := book.found("unclear_opt_out", grams)):
        phrase, language = best(unclear)
        readings.append(Understood(Reading.UNCLEAR_OPT_OUT, language, phrase))
    return readings
