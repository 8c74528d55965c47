"""Text filters in SQL that take the user's text literally.

`LIKE` treats `%` and `_` as wildcards, so a search for "50%_off" or a tag "a_b" would
match other text (and "%" alone would match everything). Every filter that matches part
of a column goes through `contains` or `starts_with`, which escape those characters and
say so with an `ESCAPE` clause (SQLite has no default escape character). Matching is
case-insensitive on both databases (ILIKE on PostgreSQL; SQLite's LIKE folds ASCII).
"""

from __future__ import annotations

import json

from peewee import OP, SQL, Expression, Field, NodeList, Value

ESCAPE = "\\"


def like_literal(text: str) -> str:
    """`text` as a LIKE pattern that matches exactly itself."""
    return text.replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%").replace("_", ESCAPE + "_")


def _like(column: Field, pattern: str) -> Expression:
    # Raw pattern: a field's converter (JSONField's) must not touch it.
    escaped = NodeList(
        (Value(pattern, converter=False), SQL("ESCAPE"), Value(ESCAPE, converter=False))
    )
    return Expression(column, OP.ILIKE, escaped)


def contains(column: Field, text: str) -> Expression:
    """Rows whose `column` holds `text` anywhere, taken literally."""
    return _like(column, f"%{like_literal(text)}%")


def starts_with(column: Field, text: str) -> Expression:
    """Rows whose `column` begins with `text`, taken literally."""
    return _like(column, f"{like_literal(text)}%")


def has_tag(column: Field, tag: str) -> Expression:
    """Rows whose tags (a JSON list stored as text, bot.models.JSONField) include `tag`,
    matched as the whole quoted JSON string, so a tag never matches part of another."""
    return contains(column, json.dumps(tag, ensure_ascii=False))
