"""The one error shape every 4xx and 5xx answer uses:

{"error": {"status": 400, "code": "invalid_payload", "message": "...", "fields": {...}}}
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from flask import Flask, jsonify
from peewee import DatabaseError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

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


def error_response(status: int, code: str, message: str, fields: dict | None = None):
    body = {"status": status, "code": code, "message": message}
    if fields:
        body["fields"] = fields
    return jsonify(error=body), status


def init_app(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        response, status = error_response(exc.status, exc.code, exc.message, exc.fields)
        response.headers.update(exc.headers)
        return response, status

    # InterfaceError: the connection died under a transaction (its rollback fails too).
    @app.errorhandler(DatabaseError)
    @app.errorhandler(InterfaceError)
    def _database_error(exc: DatabaseError | InterfaceError):
        if not is_outage(exc):
            # Validation runs before every write, so this is a column nobody checked:
            # a bug to fix, not an outage to wait out (a 503 would make senders retry
            # the same value for days). Logged whole, answered without the detail.
            log.error("database refused a value: %s: %s", type(exc).__name__, exc)
            return error_response(
                500, "unstorable_value", "a value could not be stored; the error was logged"
            )
        # Senders that redeliver (Meta, Shopify, the generic API's clients) retry on 503.
        log.error("database unavailable: %s", exc)
        response, status = error_response(
            503, "database_unavailable", "the database is unavailable; retry later"
        )
        response.headers["Retry-After"] = "30"
        return response, status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        code = (exc.name or "error").lower().replace(" ", "_")
        response, status = error_response(exc.code or 500, code, exc.description or exc.name)
        # Keep what the exception says beyond its body: `Allow` on a 405 (RFC 9110 requires
        # it), `WWW-Authenticate` on a 401, `Retry-After` where werkzeug sets one.
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response, status
