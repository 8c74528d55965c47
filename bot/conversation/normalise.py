"""Inbound text in one comparable form, so "STOP!!!", " stop 🙏" and "Stop." read alike.

`normalise` is the contract (case, punctuation, emoji, native digits); `matching_form` folds
a little further, for comparing a message with keywords only, never for showing it.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

# Emoji presentation selectors and the keycap ring are marks (M*) but carry no letter.
_VARIATION_SELECTORS = frozenset(range(0xFE00, 0xFE10)) | frozenset(range(0xE0100, 0xE01F0))

# Arabic: short vowels, shadda, sukun, dagger alef and tatweel are rarely typed in chat;
# hamza-carrying alefs, taa marbuta and alef maqsura are typed interchangeably.
_ARABIC_DIACRITICS = frozenset(range(0x064B, 0x0660)) | {0x0670, 0x0640}
_ARABIC_LETTERS = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ة": "ه", "ى": "ي"})

# Malayalam chillu letters exist both as atomic code points (Unicode 5.1+) and as the
# older consonant + virama (+ ZWJ, which `normalise` drops); phones send either.
_MALAYALAM_CHILLU = str.maketrans(
    {
        "\u0d7a": "\u0d23\u0d4d",
        "\u0d7b": "\u0d28\u0d4d",
        "\u0d7c": "\u0d30\u0d4d",
        "\u0d7d": "\u0d32\u0d4d",
        "\u0d7e": "\u0d33\u0d4d",
        "\u0d7f": "\u0d15\u0d4d",
        "\u0d54": "\u0d2e\u0d4d",
        "\u0d55": "\u0d2f\u0d4d",
        "\u0d56": "\u0d34\u0d4d",
    }
)


def normalise(text: str) -> str:
    """`text` case-folded (NFKC), with every Unicode decimal digit as ASCII, punctuation,
    symbols and emoji turned into spaces, and whitespace collapsed and stripped.

    Letters and combining marks (Indic vowel signs, viramas, nuktas) are kept as they are;
    invisible format characters (ZWJ, ZWNJ, direction marks) are dropped.
    """
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    kept = "".join(_fold_character(character) for character in folded)
    # Dropping a joiner can leave a base letter and a mark that now compose.
    return unicodedata.normalize("NFKC", " ".join(kept.split()))


@lru_cache(maxsize=4096)
def matching_form(text: str) -> str:
    """`normalise(text)` without Latin accents, Arabic vowel marks and spelling variants,
    and with Malayalam chillu letters spelled one way: "ARRÊT" matches "arret", "إلغاء"
    matches "الغاء". Indic vowel signs stay: they change the word.
    """
    text = normalise(text).translate(_ARABIC_LETTERS).translate(_MALAYALAM_CHILLU)
    kept: list[str] = []
    for character in unicodedata.normalize("NFD", text):
        if ord(character) in _ARABIC_DIACRITICS:
            continue
        if unicodedata.category(character) == "Mn" and kept and _is_latin(kept[-1]):
            continue
        kept.append(character)
    return " ".join(unicodedata.normalize("NFC", "".join(kept)).split())


def _fold_character(character: str) -> str:
    category = unicodedata.category(character)
    if category == "Nd":
        return str(unicodedata.decimal(character))
    if category[0] in "LN":
        return character
    if category[0] == "M":
        if category == "Me" or ord(character) in _VARIATION_SELECTORS:
            return ""
        return character
    if category[0] in "PSZ" or category == "Cc":
        return " "
    return ""  # Cf, Co, Cn, Cs: joiners, private use, unassigned (newer emoji), surrogates


def _is_latin(character: str) -> bool:
    return unicodedata.name(character, "").startswith("LATIN ")
