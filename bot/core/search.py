"""Text filters in SQL take the user's text literally: `%` and `_` are never wildcards.

Every filter matches with peewee's `contains`/`startswith`, which escape LIKE's
wildcards (with an ESCAPE clause, on SQLite and PostgreSQL alike) and match
case-insensitively. Never build a LIKE pattern by hand (`**` or `Value(f"%{text}%")`):
that is how a tag filter "%" once matched every customer.
"""

from __future__ import annotations

import json

from peewee import Expression, Field


def has_tag(column: Field, tag: str) -> Expression:
    """Rows whose tags (a JSON list stored as text, bot.core.models.JSONField) include `tag`
    (case-insensitively), matched as the whole quoted JSON string so that a tag never
    matches part of another. The cast keeps the JSON field's converter off the pattern."""
    return column.cast("TEXT").contains(json.dumps(tag, ensure_ascii=False))
