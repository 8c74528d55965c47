"""Text filters in SQL take the user's text literally: `%` and `_` are never wildcards.

Every filter matches with peewee's `contains`/`startswith`, which escape LIKE's
wildcards (with an ESCAPE clause, on SQLite and PostgreSQL alike) and match
case-insensitively. Never build a LIKE pattern by hand (`**` or `Value(f"%{text}%")`):
that is how a tag filter "%" once matched every customer.
"""

from __future__ import annotations

import json
import re

from peewee import Expression, Field

from bot.core import phones

#: Text that is a phone number as people type it: digits, spaces, + - . ( ). A `+` left
#: unencoded in a query string arrives as a space, which this reads the same.
PHONE_TEXT = re.compile(r"[\d\s()+.\-]*\d[\d\s()+.\-]*")


def has_tag(column: Field, tag: str) -> Expression:
    """Rows whose tags (a JSON list stored as text, bot.core.models.JSONField) include `tag`
    (case-insensitively), matched as the whole quoted JSON string so that a tag never
    matches part of another. The cast keeps the JSON field's converter off the pattern."""
    return column.cast("TEXT").contains(json.dumps(tag, ensure_ascii=False))


def phone_or_name(phone: Field, name: Field, text: str, default_region: str) -> Expression:
    """Rows whose name contains `text`, or whose number matches it as typed.

    A number is stored in E.164 ("+919811122233") but typed as "98111 22233", "+91 98111
    22233", "098111-22233" or " 91 98111 22233" (a `+` unencoded in a URL): such text
    matches the numbers that contain its digits, or that are the number it reads as in
    `default_region` (which drops a trunk 0). Other text matches the number literally.
    """
    text = text.strip()
    found = name.contains(text)
    if not PHONE_TEXT.fullmatch(text):
        return found | phone.contains(text)
    found |= phone.contains(re.sub(r"\D", "", text))
    e164 = phones.to_e164(text, default_region)
    return found | (phone == e164) if e164 else found
