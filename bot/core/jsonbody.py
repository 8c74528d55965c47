"""The one way a request body is read as JSON: the webhooks, the shop sources and the
admin API all decode through `decode_json`.

A body nested thousands of levels deep would otherwise crash the parser, or any code
that walks the parsed value (marshmallow, `bot.core.errors.without_unstorable`), with a
RecursionError: a 500 instead of a 400. Nothing genuine comes close to MAX_DEPTH (a Meta
webhook is about ten levels deep).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

MAX_DEPTH = 64


class InvalidJson(ValueError):
    """The body is not JSON Dakiya will read; the message says why (for the answer)."""


class NestedTooDeep(InvalidJson):
    """The body is JSON, or starts like it, but nests deeper than MAX_DEPTH levels."""


def decode_json(body: bytes | str, parse_constant: Callable[[str], Any] | None = None) -> Any:
    """`body` parsed as JSON, no deeper than MAX_DEPTH levels of arrays and objects;
    InvalidJson otherwise. `parse_constant` as for `json.loads` (NaN, Infinity)."""
    try:
        data = json.loads(body, parse_constant=parse_constant)
    except RecursionError:
        raise NestedTooDeep(too_deep_message()) from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError too
        raise InvalidJson(f"not valid JSON: {exc}") from None
    if depth_exceeds(data, MAX_DEPTH):
        raise NestedTooDeep(too_deep_message())
    return data


def too_deep_message() -> str:
    return f"nested deeper than {MAX_DEPTH} levels of arrays and objects"


def depth_exceeds(value: Any, limit: int) -> bool:
    """Whether `value` nests arrays and objects more than `limit` levels deep (walked
    without recursion, so that the check itself cannot overflow the stack)."""
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
