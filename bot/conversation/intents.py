"""What an inbound WhatsApp message asks for: stop, start, help, a person, a language, an order.

Keywords are data (`locales/<lang>/keywords.toml`, see `locales/README.md`). Stop, start,
help, agent and language words count only as the whole message, because they are also
ordinary verbs: "order band karo" asks to cancel an order, not to stop messages.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.dates import get_month_names

from bot.conversation.language_id import is_weak, message_language
from bot.conversation.normalise import matching_form
from bot.conversation.phrasing import (
    SENTENCE_SECTIONS,
    Phrasebook,
    Reading,
    build_phrasebook,
    collapse,
    read_sentence,
    word_grams,
)
from bot.conversation.typos import TYPO_CLEAR, one_slip_from

LOCALES_DIR = Path(__file__).resolve().parents[2] / "locales"

Rank = Callable[[str], tuple[int, str]]


class IntentKind(StrEnum):
    OPT_OUT = "opt_out"
    OPT_OUT_UNCLEAR = "opt_out_unclear"  # might be a stop: asked, with buttons
    OPT_IN = "opt_in"
    HELP = "help"
    LANGUAGE = "language"
    ORDER_STATUS = "order_status"
    AGENT = "agent"
    KEEP_MESSAGES = "keep_messages"  # "keep them", on the stop question
    COD_ANSWER = "cod_answer"  # Confirm or Cancel on a cash-on-delivery confirmation
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Intent:
    kind: IntentKind
    language: str | None  # language whose keyword matched; None for UNKNOWN or a bare number
    target_language: str | None = None  # for LANGUAGE
    order_reference: str | None = None  # for ORDER_STATUS
    #: The language the message is written in (`language_id`), None without letters;
    #: weak when that is only English read from a few Latin words.
    written_in: str | None = field(default=None, compare=False)
    written_weak: bool = field(default=False, compare=False)
    #: The keyword or phrase that decided it ("stop sending", ...): evidence only.
    phrase: str | None = field(default=None, compare=False)


# Sections matched against the whole message, in the order a clash between them is
# settled: stopping wins over everything, so a shared word can never keep messages coming.
WHOLE_MESSAGE = (
    IntentKind.OPT_OUT,
    IntentKind.OPT_IN,
    IntentKind.HELP,
    IntentKind.AGENT,
    IntentKind.LANGUAGE,
    IntentKind.OPT_OUT_UNCLEAR,
)
#: The keyword file's section for each whole-message kind (its value, unless named here):
#: `unclear_alone` holds words that may mean stop only when they are the whole message
#: ("बस", "mathi", "خلاص": also "bus", "fine", "done" inside a sentence).
SECTION_OF = {IntentKind.OPT_OUT_UNCLEAR: "unclear_alone"}
SECTIONS = frozenset(
    {
        *(SECTION_OF.get(kind, kind) for kind in WHOLE_MESSAGE),
        "order_status",
        "order_words",
        "fillers",
        *SENTENCE_SECTIONS,
    }
)


@dataclass(frozen=True)
class KeywordBook:
    """Every language's keywords, already in `matching_form`."""

    languages: tuple[str, ...]
    # phrase without spaces -> every (kind, language) that lists it
    whole_message: dict[str, tuple[tuple[IntentKind, str], ...]]
    order_phrases: tuple[tuple[str, str], ...]  # (phrase, language)
    order_words: tuple[tuple[str, str], ...]  # (word, language)
    fillers: tuple[tuple[str, ...], ...]  # word sequences, longest first
    #: The sentence sections (`bot.conversation.phrasing`).
    phrasebook: Phrasebook = Phrasebook({})
    #: `whole_message` keyed by the collapsed form too ("stoppp" -> "stop").
    whole_collapsed: dict[str, tuple[tuple[IntentKind, str], ...]] = field(default_factory=dict)
    #: Opt-out keywords (without spaces) by length, for misspellings.
    opt_out_keys: dict[int, tuple[tuple[str, str], ...]] = field(default_factory=dict)


def load_keyword_book(locales_dir: str | Path) -> KeywordBook:
    """Read and check every `<locales_dir>/<lang>/keywords.toml`; the folder names the language.

    A language also answers to its own name and its English name as given by Babel
    ("हिन्दी", "Hindi"), so a file need not list them.
    """
    paths = sorted(Path(locales_dir).glob("*/keywords.toml"))
    if not paths:
        raise ValueError(f"no <lang>/keywords.toml under {locales_dir}")
    whole: dict[str, list[tuple[IntentKind, str]]] = {}
    order_phrases: list[tuple[str, str]] = []
    order_words: list[tuple[str, str]] = []
    fillers: set[tuple[str, ...]] = set()
    sentences: dict[str, dict[str, list[str]]] = {}
    for path in paths:
        language = path.parent.name
        sections = _read_keyword_file(path)
        sections[IntentKind.LANGUAGE] = [*sections.get("language", []), *_own_names(language)]
        seen: dict[str, str] = {}
        for kind in WHOLE_MESSAGE:
            for phrase in sections.get(SECTION_OF.get(kind, kind), []):
                key = phrase.replace(" ", "")
                if seen.setdefault(key, kind) != kind:
                    raise ValueError(f"{path}: {phrase!r} is in both {seen[key]} and {kind}")
                if (kind, language) not in whole.setdefault(key, []):
                    whole[key].append((kind, language))
        order_phrases += [(phrase, language) for phrase in sections.get("order_status", [])]
        order_words += [(word, language) for word in sections.get("order_words", [])]
        fillers.update(tuple(phrase.split()) for phrase in sections.get("fillers", []))
        sentences[language] = {name: sections.get(name, []) for name in SENTENCE_SECTIONS}
    collapsed: dict[str, list[tuple[IntentKind, str]]] = {}
    for key, entries in whole.items():
        for entry in entries:
            if entry not in collapsed.setdefault(collapse(key), []):
                collapsed[collapse(key)].append(entry)
    return KeywordBook(
        languages=tuple(path.parent.name for path in paths),
        whole_message={key: tuple(entries) for key, entries in whole.items()},
        order_phrases=tuple(order_phrases),
        order_words=tuple(order_words),
        fillers=tuple(sorted(fillers, key=lambda words: (-len(words), words))),
        phrasebook=build_phrasebook(sentences),
        whole_collapsed={key: tuple(entries) for key, entries in collapsed.items()},
        opt_out_keys=_by_length(
            (key, language)
            for key, entries in whole.items()
            for kind, language in entries
            if kind is IntentKind.OPT_OUT
        ),
    )


def _by_length(keys: Iterable[tuple[str, str]]) -> dict[int, tuple[tuple[str, str], ...]]:
    found: dict[int, list[tuple[str, str]]] = {}
    for key, language in keys:
        found.setdefault(len(key), []).append((key, language))
    return {size: tuple(sorted(entries)) for size, entries in found.items()}


@cache
def default_book() -> KeywordBook:
    """The keyword book shipped in the repository's `locales/`."""
    return load_keyword_book(LOCALES_DIR)


def detect_intent(
    text: str,
    book: KeywordBook,
    button_payload: str | None = None,
    preferred_language: str | None = None,
) -> Intent:
    """What the message (or the tapped button, checked first) asks for.

    When a phrase belongs to several languages ("stop" is English, French and German),
    the reported language is `preferred_language` if it is one of them, else English,
    else the first in alphabetical order.
    """
    rank = _precedence(preferred_language)
    intent = _intent_of(text, book, button_payload, rank)
    grams = word_grams(text) if text else {}
    written = (
        message_language(
            text, intent.language, _votes(grams, book, ("romanised",)), _votes(grams, book)
        )
        if text
        else None
    )
    weak = bool(text) and is_weak(text, written, intent.language)
    return replace(intent, written_in=written, written_weak=weak)


def _intent_of(text: str, book: KeywordBook, button_payload: str | None, rank: Rank) -> Intent:
    sources = [source for source in (button_payload, text) if source and source.strip()]
    for source in sources:
        if intent := _whole_message_intent(source, book, rank):
            return intent
    grams = word_grams(text) if text else {}
    if clause := _stop_clause(text, book, rank):
        # "who is this? stop": a stop keyword standing alone between punctuation. About
        # an order as well ("stop, wrong parcel")? Then it is asked, not acted on.
        if book.phrasebook.found("shipment_words", grams):
            return Intent(IntentKind.OPT_OUT_UNCLEAR, clause.language, phrase=clause.phrase)
        return clause
    if typo := _misspelt_stop(text, book):
        return typo
    readings = read_sentence(grams, book.phrasebook, rank)
    first = readings[0] if readings else None
    if first and first.reading in (Reading.OPT_OUT, Reading.AGENT):
        kind = IntentKind.OPT_OUT if first.reading is Reading.OPT_OUT else IntentKind.AGENT
        return Intent(kind, first.language, phrase=first.phrase)
    hits = [hit for source in sources if (hit := _order_status_intent(source, book, rank))]
    shipped = [r for r in readings if r.reading is Reading.ORDER_STATUS]
    if hits or shipped:
        words = _all_order_words(book)
        reference = next(
            (ref for source in sources if (ref := extract_order_reference(source, words))), None
        )
        language = next((hit.language for hit in hits if hit.language), None)
        language = language or (shipped[0].language if shipped else None)
        return Intent(IntentKind.ORDER_STATUS, language, order_reference=reference)
    unclear = [r for r in readings if r.reading is Reading.UNCLEAR_OPT_OUT]
    if unclear:
        return Intent(IntentKind.OPT_OUT_UNCLEAR, unclear[0].language, phrase=unclear[0].phrase)
    return Intent(IntentKind.UNKNOWN, None)


CLAUSES = re.compile(r"[.!?;,\n।؟،]+")


def _stop_clause(text: str, book: KeywordBook, rank: Rank) -> Intent | None:
    """An opt-out keyword that is a whole clause of a longer message."""
    clauses = [c for c in CLAUSES.split(text or "") if matching_form(c)]
    if len(clauses) < 2:
        return None
    for clause in clauses:
        intent = _whole_message_intent(clause, book, rank)
        if intent is not None and intent.kind is IntentKind.OPT_OUT:
            return intent
    return None


def _misspelt_stop(text: str, book: KeywordBook) -> Intent | None:
    """A message that is an opt-out keyword but for one slip of the finger ("stpo",
    "unsubcribe"): a long one is clear, a short one is asked ("shop" is one slip from
    "stop" too)."""
    words = _strip_fillers(matching_form(text).split(), book.fillers)
    key = "".join(words)
    if len(key) >= 4 and (found := one_slip_from(key, book.opt_out_keys, len(key) >= TYPO_CLEAR)):
        kind = IntentKind.OPT_OUT if len(key) >= TYPO_CLEAR else IntentKind.OPT_OUT_UNCLEAR
        return Intent(kind, found[1], phrase=f"~{found[0]}")
    if len(words) > 1 and not book.phrasebook.found("keep_phrases", word_grams(text)):
        # A long keyword misspelt inside a sentence ("pls unsubscibe me").
        for before, word in zip(["", *words], words, strict=False):
            if before in NEGATIONS or len(word) < TYPO_CLEAR:
                continue
            if found := one_slip_from(word, book.opt_out_keys, True):
                return Intent(IntentKind.OPT_OUT, found[1], phrase=f"~{found[0]}")
    return None


#: Words that turn "unsubcribe" into "don't unsubscribe" (after normalisation).
NEGATIONS = frozenset({"dont", "t", "not", "never", "no", "nahi", "mat", "na"})


def _votes(
    grams: dict[str, int], book: KeywordBook, sections: tuple[str, ...] = SENTENCE_SECTIONS
) -> list[str]:
    """The languages whose phrases (in `sections`) the message uses, most first; a
    phrase several languages share counts for none of them."""
    counts: dict[str, int] = {}
    for section in sections:
        for _, languages in book.phrasebook.found(section, grams):
            if len(languages) == 1:
                counts[languages[0]] = counts.get(languages[0], 0) + 1
    ranked = sorted(counts, key=lambda language: (-counts[language], language))
    top = [language for language in ranked if counts[language] == counts[ranked[0]]]
    return ranked if len(top) == 1 else []  # a tie says nothing


def extract_order_reference(text: str, order_words: Iterable[str] | None = None) -> str | None:
    """The order reference in `text`: its letters and digits, without '#' or dashes,
    letters upper-cased, native digits as ASCII ("#shop-1042" -> "SHOP1042", "१०४२" -> "1042").

    A reference is 3 to 9 digits, optionally after up to 10 ASCII letters. In order of trust:
    one written after '#'; one right after an order word ("order", "order no.", "ऑर्डर
    नंबर"; `order_words` defaults to every language's); a bare number; a letters-and-digits
    token that is the whole message. A bare number is not taken when it is part of a phone
    number (10 or more digits, or written after '+'), a date ("12/05/2024", "2024-05-12",
    a year next to a month name), a decimal or grouped amount ("1,499"), or an amount
    after a currency sign or "Rs"/"INR".
    """
    found = _find_reference(text, order_words)
    return found[0] if found else None


# --- whole-message keywords -------------------------------------------------------------


def _whole_message_intent(text: str, book: KeywordBook, rank: Rank) -> Intent | None:
    words = matching_form(text).split()
    words = [w for i, w in enumerate(words) if i == 0 or w != words[i - 1]]  # "stop stop"
    words = _strip_fillers(words, book.fillers) or words
    entries = book.whole_message.get("".join(words))
    if not entries:
        # Letters held down ("stoppp", "STOOOP"); fillers too ("plzzz stop").
        words = _strip_fillers(collapse(" ".join(words)).split(), book.fillers) or words
        entries = book.whole_collapsed.get(collapse("".join(words)))
    if not entries:
        return None
    for kind in WHOLE_MESSAGE:
        languages = [language for entry_kind, language in entries if entry_kind == kind]
        if languages:
            language = min(languages, key=rank)
            target = language if kind == IntentKind.LANGUAGE else None
            return Intent(kind, language, target_language=target, phrase=" ".join(words))
    return None


def _strip_fillers(words: list[str], fillers: tuple[tuple[str, ...], ...]) -> list[str]:
    """`words` without polite words at either end ("stop please", "kripya band karo")."""
    known, sizes = _filler_index(fillers)
    stripped = True
    while stripped and words:
        stripped = False
        for size in sizes:  # longest first
            if tuple(words[:size]) in known:
                words, stripped = words[size:], True
            elif tuple(words[-size:]) in known:
                words, stripped = words[:-size], True
    return words


@cache
def _filler_index(fillers: tuple[tuple[str, ...], ...]) -> tuple[frozenset, tuple[int, ...]]:
    return frozenset(fillers), tuple(sorted({len(f) for f in fillers}, reverse=True))


# --- order-status questions -------------------------------------------------------------


def _order_status_intent(text: str, book: KeywordBook, rank: Rank) -> Intent | None:
    """An order-status question: an order-status phrase anywhere (as whole words), an order
    word with a reference ("order 1042 kab aayega"), or a message that is only a reference.
    """
    padded = f" {matching_form(text)} "
    phrases = [(p, lang) for p, lang in book.order_phrases if f" {p} " in padded]
    if phrases:
        return Intent(IntentKind.ORDER_STATUS, _best_language(phrases, rank))
    found = _find_reference(text, _all_order_words(book))
    if found is None:
        return None
    words = [(w, lang) for w, lang in book.order_words if f" {w} " in padded]
    if words:
        return Intent(IntentKind.ORDER_STATUS, _best_language(words, rank))
    prepared, start, end = found[1]
    rest = matching_form(f"{prepared[:start]} {prepared[end:]}").split()
    if not _strip_fillers(rest, book.fillers):
        return Intent(IntentKind.ORDER_STATUS, None)
    return None


def _best_language(matches: list[tuple[str, str]], rank: Rank) -> str:
    """The preferred language if it matched, else the one with the longest phrase."""
    _, language = min(matches, key=lambda m: (rank(m[1])[0] != 0, -len(m[0]), rank(m[1])))
    return language


def _all_order_words(book: KeywordBook) -> tuple[str, ...]:
    return tuple(dict.fromkeys(word for word, _ in book.order_words))


def _precedence(preferred: str | None) -> Rank:
    base = (preferred or "").replace("-", "_").split("_")[0].lower()

    def rank(language: str) -> tuple[int, str]:
        if language == base:
            return (0, language)
        return (1 if language == "en" else 2, language)

    return rank


# --- order references -------------------------------------------------------------------

_CANDIDATE = re.compile(
    r"(?<![A-Za-z0-9_])(?<!\d[.,/:-])"
    r"(?P<hash>#\s?)?"
    r"(?P<ref>(?P<letters>[A-Za-z]{1,10}-?)?\d{3,9})"
    r"(?![A-Za-z0-9_])(?![.,/:-]\d)"
)
_DIGIT_GROUPS = re.compile(r"\+?\(?\d+\)?(?:[ .-]\(?\d+\)?)*")
_CURRENCY_WORD = re.compile(r"(?:^|[^A-Za-z])(?:rs|inr)\.?$", re.IGNORECASE)
_PHONE_DIGITS = 10


def _find_reference(
    text: str, order_words: Iterable[str] | None
) -> tuple[str, tuple[str, int, int]] | None:
    """The reference and where it sits in the prepared text (for `_order_status_intent`)."""
    prepared = _fold_digits(unicodedata.normalize("NFKC", text))
    masked = _mask_phone_numbers(prepared)
    if order_words is None:
        order_words = _all_order_words(default_book())
    words = _matching_forms(tuple(order_words))
    by_hash, by_word, bare, lettered = [], [], [], []
    for match in _CANDIDATE.finditer(masked):
        before = matching_form(masked[: match.start()])
        if match["hash"]:
            by_hash.append(match)
        elif any(before == w or before.endswith(f" {w}") for w in words if w):
            by_word.append(match)
        elif match["letters"]:
            lettered.append(match)
        elif not _is_amount(masked, match) and not _is_year(masked, match):
            bare.append(match)
    whole = [m for m in lettered if not matching_form(masked[: m.start()] + masked[m.end() :])]
    best = next(iter((*by_hash, *by_word, *bare, *whole)), None)
    if best is None:
        return None
    reference = re.sub(r"[^A-Za-z0-9]", "", best["ref"]).upper()
    return reference, (prepared, best.start(), best.end())


@cache
def _matching_forms(words: tuple[str, ...]) -> tuple[str, ...]:
    """The order words as messages are compared with them (once per word list)."""
    return tuple(matching_form(word) for word in words)


def _fold_digits(text: str) -> str:
    return "".join(
        str(unicodedata.decimal(c)) if unicodedata.category(c) == "Nd" else c for c in text
    )


def _mask_phone_numbers(text: str) -> str:
    """`text` with phone numbers blanked out: 10+ digits in groups, or anything after '+'.

    A single unbroken run of 10+ digits is left alone: `_CANDIDATE` never matches inside
    it, and blanking the whole span would lose the 1042 in "order 1042 9812345678".
    """

    def blank(match: re.Match[str]) -> str:
        span = match[0]
        digits = sum(c.isdigit() for c in span)
        longest_group = max(len(group) for group in re.findall(r"\d+", span))
        if span.startswith("+") or (digits >= _PHONE_DIGITS and longest_group < _PHONE_DIGITS):
            return " " * len(span)
        return span

    return _DIGIT_GROUPS.sub(blank, text)


def _is_amount(text: str, match: re.Match[str]) -> bool:
    before = text[: match.start()].rstrip()
    return bool(before) and (
        unicodedata.category(before[-1]) == "Sc" or bool(_CURRENCY_WORD.search(before))
    )


def _is_year(text: str, match: re.Match[str]) -> bool:
    number = match["ref"]
    if len(number) != 4 or not 1900 <= int(number) <= 2099:
        return False
    before = matching_form(text[: match.start()]).split()[-1:]
    after = matching_form(text[match.end() :]).split()[:1]
    return any(word in _month_names() for word in before + after)


@cache
def _month_names() -> frozenset[str]:
    """Month names and abbreviations in every language that has a keyword file, and English."""
    names: set[str] = set()
    for language in {"en", *(path.parent.name for path in LOCALES_DIR.glob("*/keywords.toml"))}:
        try:
            locale = Locale.parse(language)
        except (UnknownLocaleError, ValueError):
            continue
        for width in ("wide", "abbreviated"):
            for context in ("format", "stand-alone"):
                months = get_month_names(width, context, locale).values()
                names.update(matching_form(month) for month in months)
    return frozenset(names)


# --- keyword files ----------------------------------------------------------------------


def _read_keyword_file(path: Path) -> dict[str, list[str]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: {error}") from error
    unknown = sorted(set(data) - SECTIONS)
    if unknown:
        expected = ", ".join(sorted(SECTIONS))
        raise ValueError(f"{path}: unknown section(s) {', '.join(unknown)}; expected {expected}")
    sections: dict[str, list[str]] = {}
    for name, phrases in data.items():
        if not isinstance(phrases, list) or not all(isinstance(p, str) for p in phrases):
            raise ValueError(f"{path}: `{name}` must be a list of strings")
        sections[name] = []
        for phrase in phrases:
            form = matching_form(phrase)
            if not form:
                raise ValueError(f"{path}: `{name}` has {phrase!r}, which is empty once normalised")
            sections[name].append(form)
    return sections


def _own_names(language: str) -> list[str]:
    try:
        locale = Locale.parse(language)
    except (UnknownLocaleError, ValueError):
        return []
    names = (locale.get_display_name(language), locale.get_display_name("en"))
    return [matching_form(name) for name in names if name and matching_form(name)]
