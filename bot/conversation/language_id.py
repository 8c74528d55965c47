"""Which language a customer's message is written in (issue 15: the reply language is
the language the customer writes in).

Evidence, strongest first:

1. the script: Bengali, Gujarati, Tamil, Telugu, Kannada, Malayalam and Arabic letters
   each name one of our languages; Devanagari is Hindi or Marathi;
2. the language of the keyword or phrase the message matched (`hint`), when it is
   written in that script (a romanised Indic phrase, "band karo", counts for Latin
   text);
3. for Latin text, distinctive romanised words of an Indic language (the keyword
   files' `romanised` section: "mujhe", "nako", "amake"): such Hinglish-style text is
   answered in that language, in its own script, since the replies exist in no
   romanised form;
4. Lingua (lingua-language-detector, its models shipped in the wheel) among the
   languages of the script, in low-accuracy mode (16 MB a process instead of ~200 MB;
   the keyword evidence above carries short texts). Latin text is English unless Lingua
   is confident of another Latin language: "Hey", "ok", "hi" are English.

None when the message has no letters (emoji, a number), so older evidence decides.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from functools import cache

from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

#: Unicode script (the first word of a letter's name) -> our languages written in it.
SCRIPTS: dict[str, tuple[str, ...]] = {
    "DEVANAGARI": ("hi", "mr"),
    "BENGALI": ("bn",),
    "GUJARATI": ("gu",),
    "TAMIL": ("ta",),
    "TELUGU": ("te",),
    "KANNADA": ("kn",),
    "MALAYALAM": ("ml",),
    "ARABIC": ("ar",),
    "LATIN": ("en", "es", "pt", "fr", "de", "id"),
}
SCRIPT_OF = {language: script for script, languages in SCRIPTS.items() for language in languages}
#: How sure Lingua must be before Latin text is taken for a language other than English,
#: and how many words make a text long enough to be sure of English.
CONFIDENT = 0.7
SURE_WORDS = 3


def script_of(text: str) -> str | None:
    """The script most of the message's letters are in, Latin only when it has no
    others ("STOP करा" is Devanagari: English words in an Indic message are common, the
    other way round rare); None without letters."""
    counts: Counter[str] = Counter()
    for character in text:
        if unicodedata.category(character)[0] == "L":
            counts[unicodedata.name(character, "").split(" ")[0]] += 1
    if len(counts) > 1:
        counts.pop("LATIN", None)
    return counts.most_common(1)[0][0] if counts else None


def is_weak(text: str, language: str | None, hint: str | None) -> bool:
    """English read from a short Latin text with no keyword ("ok", "START again pls"):
    the customer's earlier messages say more than it does."""
    return language == "en" and hint is None and len(text.split()) < SURE_WORDS


def message_language(
    text: str, hint: str | None, romanised: list[str], votes: list[str] | None = None
) -> str | None:
    """The language `text` is written in, among ours; `hint` is the language of the
    keyword or phrase it matched, `romanised` the languages whose romanised words it
    uses, `votes` those whose phrases it uses (each most first; empty on a tie)."""
    script = script_of(text)
    if script is None:
        return None
    if script != "LATIN":
        candidates = SCRIPTS.get(script)
        if not candidates:
            return hint  # a script we have no replies in: what the keywords said, if any
        if len(candidates) == 1:
            return candidates[0]
        voted = [language for language in votes or () if language in candidates]
        if voted:
            return voted[0]  # Hindi or Marathi: the words they share say nothing
        if hint in candidates:
            return hint
        ranked = _ranked(text, candidates)
        return ranked[0][0] if ranked else candidates[0]
    if romanised and hint in (None, "en"):
        return romanised[0]  # Hinglish and the like mix in English words ("parcel kab")
    if hint:
        return hint  # a Latin keyword, or a romanised Indic one ("band karo")
    ranked = _ranked(text, SCRIPTS["LATIN"])
    sure = CONFIDENT if len(text.split()) >= SURE_WORDS else 0.9
    if ranked and ranked[0][0] != "en" and ranked[0][1] >= sure:
        return ranked[0][0]
    return "en"


def _ranked(text: str, candidates: tuple[str, ...]) -> list[tuple[str, float]]:
    """Lingua's confidence in each candidate, most likely first."""
    values = _detector(candidates).compute_language_confidence_values(text)
    return [(value.language.iso_code_639_1.name.lower(), value.value) for value in values]


@cache
def _detector(candidates: tuple[str, ...]):
    languages = [Language.from_iso_code_639_1(getattr(IsoCode639_1, c.upper())) for c in candidates]
    return (
        LanguageDetectorBuilder.from_languages(*languages)
        .with_preloaded_language_models()
        .with_low_accuracy_mode()
        .build()
    )
