"""The one error shape every 4xx and 5xx answer uses:

{"error": {"status": 400, "code": "invalid_payload", "message": "...", "fields": {...}}}
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from peewee import DatabaseError
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

    @app.errorhandler(DatabaseError)
    def _database_down(exc: DatabaseError):
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
        return error_response(exc.code or 500, code, exc.description or exc.name)
