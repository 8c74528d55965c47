"""The one error shape of every answer: `ApiError`, werkzeug's HTTP errors and database
failures become `{"error": {"status", "code", "message", "fields"}}`."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from peewee import DatabaseError, InterfaceError
from werkzeug.exceptions import HTTPException

from bot.core.errors import ApiError, is_outage

log = logging.getLogger(__name__)


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
