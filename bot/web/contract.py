"""Declaring an endpoint's contract once: its query string, body and response schemas.

`@endpoint(...)` validates the request with marshmallow (one error shape, each bad field
named; unknown fields rejected) and records the schemas on the view, where
`bot.web.openapi` reads them to publish `/openapi.json`. One declaration, so the document
cannot drift from what the code accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from functools import wraps
from typing import Any

from flask import request
from marshmallow import RAISE, Schema, ValidationError, fields, validate
from werkzeug.routing import IntegerConverter

from bot.core.errors import ApiError, flatten_errors, unstorable_path
from bot.core.jsonbody import InvalidJson, NestedTooDeep, decode_json

MAX_PAGE = 100
MAX_ID = 2**63 - 1  # a 64-bit database key; larger numbers overflow SQLite (500s)


@dataclass(frozen=True)
class Contract:
    summary: str
    tag: str
    query: type[Schema] | None = None
    body: type[Schema] | None = None
    response: type[Schema] | None = None
    many: bool = False
    status: int = 200
    errors: tuple[int, ...] = field(default_factory=tuple)
    media_type: str = "application/json"  # of the success answer, e.g. "text/csv"
    #: Media types of a non-JSON body the view reads itself (e.g. a CSV upload).
    uploads: tuple[str, ...] = ()
    #: A request the view accepts, documented for API users (and sent by the contract
    #: test): the JSON body, or an upload's media type -> its example body.
    example: Any = None
    #: Path parameter -> a documented value (default: 1 for an id); see bot.web.openapi.
    path_examples: Mapping[str, Any] = field(default_factory=dict)


def endpoint(
    *,
    tag: str,
    query: type[Schema] | None = None,
    body: type[Schema] | None = None,
    response: type[Schema] | None = None,
    many: bool = False,
    status: int = 200,
    errors: tuple[int, ...] = (),
    media_type: str = "application/json",
    uploads: tuple[str, ...] = (),
    example: Any = None,
    path_examples: Mapping[str, Any] | None = None,
) -> Callable:
    """Validate `query` (request.args) and `body` (JSON) and pass them to the view as
    the `query` and `body` keyword arguments; record the contract for OpenAPI."""

    def decorate(view: Callable) -> Callable:
        summary = (view.__doc__ or view.__name__).strip().splitlines()[0]

        @wraps(view)
        def checked(*args, **kwargs):
            if query is not None:
                kwargs["query"] = load(query(unknown=RAISE), request.args.to_dict(), "query")
            if body is not None:
                data = request_json()
                if not isinstance(data, dict):
                    raise ApiError(
                        400,
                        "invalid_body",
                        "the body must be a JSON object",
                        {"body": ["not a JSON object"]},
                    )
                kwargs["body"] = load(body(unknown=RAISE), data, "body")
            return view(*args, **kwargs)

        checked.contract = Contract(
            summary,
            tag,
            query,
            body,
            response,
            many,
            status,
            errors,
            media_type,
            uploads,
            example,
            dict(path_examples or {}),
        )
        return checked

    return decorate


def request_json():
    """The request's JSON body (None when it is not sent as JSON, or is not JSON at all);
    a body nested too deep is a 400 naming the depth."""
    if not request.is_json:
        return None
    try:
        return decode_json(request.get_data(cache=True))
    except NestedTooDeep as exc:
        raise ApiError(400, "invalid_body", f"the body is {exc}", {"body": [str(exc)]}) from None
    except InvalidJson:
        return None


def load(schema: Schema, data: dict, where: str) -> dict:
    bad = unstorable_path(data)
    if bad is not None:
        raise ApiError(
            400,
            f"invalid_{where}",
            f"invalid {where}",
            {
                bad or where: [
                    "Contains a character that cannot be stored (NUL or a lone surrogate)."
                ]
            },
        )
    try:
        return schema.load(data)
    except ValidationError as exc:
        fields_at_fault = flatten_errors(exc.messages, root=where)
        raise ApiError(400, f"invalid_{where}", f"invalid {where}", fields_at_fault) from exc


class DatabaseIdConverter(IntegerConverter):
    """Flask's `<int:...>` capped at MAX_ID: a larger number is a 404, not an overflow."""

    def __init__(self, url_map, *args, **kwargs) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(url_map, *args, **kwargs)


class UtcDateTime(fields.DateTime):
    """A date-time as the database keeps it (naive UTC), written with its offset.

    Out: "2026-11-25T17:55:52+00:00" (RFC 3339, as the OpenAPI document promises).
    In: any ISO 8601 date-time; one with an offset is converted to UTC, a naive one is UTC.
    """

    def _serialize(self, value, attr, obj, **kwargs):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return super()._serialize(value, attr, obj, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        moment = super()._deserialize(value, attr, data, **kwargs)
        return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


class PageQuery(Schema):
    """Keyset pagination: `limit` (1..100) rows with an id greater than `after`."""

    limit = fields.Integer(load_default=50, validate=validate.Range(1, MAX_PAGE))
    after = fields.Integer(load_default=0, validate=validate.Range(0, MAX_ID))


def page(query, limit: int, after: int, key) -> tuple[list, int | None]:
    """One page of `query` ordered by `key`, and the cursor for the next page (or None)."""
    rows = list(query.where(key > after).order_by(key).limit(limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (getattr(rows[-1], key.name) if more else None)
