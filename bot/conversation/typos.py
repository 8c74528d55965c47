"""Keywords typed with one slip of the finger ("stpo", "unsubcribe"): pure functions over
a table of keywords by length (`KeywordBook.opt_out_keys`)."""

from __future__ import annotations

#: A misspelt keyword this long is still a clear opt-out; shorter ones are asked.
TYPO_CLEAR = 8

Keys = dict[int, tuple[tuple[str, str], ...]]


def one_slip_from(key: str, keys: Keys, substitutions: bool) -> tuple[str, str] | None:
    """The (keyword, language) of `keys` that `key` is one slip from; a short key may not
    be a wrong letter ("shop" is no "stop"), only a swapped, missing or extra one
    ("stpo", "sop"). Latin letters only."""
    if not key.isascii():
        return None  # in Indic and Arabic script one mark apart is often another word
    for size in (len(key), len(key) - 1, len(key) + 1):
        for candidate, language in keys.get(size, ()):
            if key.startswith(candidate):
                continue  # "unsubscribed", "stops": another form of the word, not a slip
            if one_slip(key, candidate, substitutions):
                return candidate, language
    return None


def one_slip(a: str, b: str, substitutions: bool = True) -> bool:
    """`a` and `b` differ by one insertion, deletion, substitution (if allowed) or swap
    of neighbours (Damerau), and are not equal."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return substitutions
        i = diff[0]
        return len(diff) == 2 and diff[1] == i + 1 and a[i] == b[i + 1] and a[i + 1] == b[i]
    short, long = (a, b) if len(a) < len(b) else (b, a)
    i = next((i for i in range(len(short)) if short[i] != long[i]), len(short))
    return short[i:] == long[i + 1 :]
