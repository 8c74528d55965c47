"""The one error shape every 4xx and 5xx answer uses:

{"error": {"status": 400, "code": "invalid_payload", "message": "...", "fields": {...}}}
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from peewee import InterfaceError, OperationalError

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answer: `status`, a stable machine `code`, words for a person, and fields."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: dict | None = None,
        headers: dict | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}
        self.headers = headers or {}


def flatten_errors(messages: Any, path: str = "", root: str = "body") -> dict[str, list[str]]:
    """marshmallow's nested error messages as {"order.tracking.url": [...]}: each bad
    field named once, by its dotted path."""
    if isinstance(messages, Mapping):
        flat: dict[str, list[str]] = {}
        for key, value in messages.items():
            child = path if key == "_schema" else f"{path}.{key}" if path else str(key)
            for name, problems in flatten_errors(value, child, root).items():
                flat.setdefault(name, []).extend(problems)
        return flat
    problems = messages if isinstance(messages, list) else [messages]
    return {path or root: [str(problem) for problem in problems]}


#: Characters no text column can hold: NUL (Postgres refuses it) and lone UTF-16
#: surrogates (they cannot be encoded as UTF-8 at all).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable_path(value: Any, path: str = "") -> str | None:
    """Where `value` (parsed JSON or a query dict) holds an unstorable character, or None.

    Such input must be refused as bad input up front rather than fail later as a
    database error (a 5xx that a sender would retry for days).
    """
    if isinstance(value, str):
        return path if UNSTORABLE.search(value) else None
    items = (
        value.items()
        if isinstance(value, Mapping)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        here = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and UNSTORABLE.search(key):
            return here
        found = unstorable_path(item, here)
        if found is not None:
            return found
    return None


def without_unstorable(value: Any) -> Any:
    """`value` with every unstorable character removed (for signed provider payloads,
    which must not be refused)."""
    if isinstance(value, str):
        return UNSTORABLE.sub("", value)
    if isinstance(value, list):
        return [without_unstorable(item) for item in value]
    if isinstance(value, dict):
        return {without_unstorable(k): without_unstorable(v) for k, v in value.items()}
    return value


#: The database errors that mean "the database cannot do it now" (a lost, refused or
#: timed-out connection, a lock or resource it is short of), not "this value cannot be
#: stored": only these are an outage (503, and a spooled delivery waits). A DataError,
#: IntegrityError, ProgrammingError and the like are a value or a bug, never an outage.
OUTAGE_ERRORS = (OperationalError, InterfaceError)


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` means the database is unavailable (retry later) rather than that
    something could not be stored (retrying the same thing fails the same way)."""
    return isinstance(exc, OUTAGE_ERRORS)
