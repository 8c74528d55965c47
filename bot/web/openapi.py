"""`GET /openapi.json`: the API's OpenAPI document, built from the same marshmallow schemas
the code validates with, so the published contract cannot drift from what is accepted.

Every view declared with `@endpoint` (bot/web/contract.py) is found by walking the URL map; the
webhooks, which read raw signed bodies instead, are described by hand below.
"""

from __future__ import annotations

import re
import tomllib
from decimal import Decimal
from http import HTTPStatus
from pathlib import Path
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, current_app, jsonify
from marshmallow import Schema, fields
from werkzeug.routing import Rule

from bot.intake.sources import shopify, woocommerce
from bot.intake.sources.schemas import MAX_HEADER_ID, GenericEventSchema
from bot.web import openapi_examples as examples
from bot.web.auth import SAFE_METHODS
from bot.web.contract import MAX_ID, Contract

OPENAPI_VERSION = "3.1.0"
ADMIN_SECURITY = [{"adminBasic": []}]
#: Every admin route can answer these, whatever its own contract lists.
ADMIN_ERRORS = (400, 401, 403, 429)
#: Flask URL converters and the JSON Schema of the values they accept.
CONVERTER_SCHEMAS: dict[str, dict[str, Any]] = {
    "int": {"type": "integer", "minimum": 0, "maximum": MAX_ID},  # api.DatabaseIdConverter
    "float": {"type": "number", "minimum": 0},
    "uuid": {"type": "string", "format": "uuid"},
    "path": {"type": "string", "minLength": 1},
    "default": {"type": "string", "minLength": 1, "pattern": "^[^/]+$"},
    "string": {"type": "string", "minLength": 1, "pattern": "^[^/]+$"},
}
#: What a webhook's signature headers look like (the real ones sign the exact body).
SIGNATURE_EXAMPLE = "sha256=" + "0f" * 32
BASE64_SIGNATURE_EXAMPLE = "Xr2Cj9nsQ4n0XqGH1z0mEsyBSwcJ6cVvK3l5yRpUk1A="
#: WooCommerce's topics (bot.intake.sources.woocommerce.is_core_topic).
WOOCOMMERCE_TOPIC = (
    "^(("
    + "|".join(sorted(woocommerce.CORE_RESOURCES))
    + ")[.]("
    + "|".join(sorted(woocommerce.CORE_EVENTS))
    + r")|action[.]\S(.*\S)?)$"
)
#: Shopify's topics Dakiya handles or ignores (bot.intake.sources.shopify.parse).
SHOPIFY_TOPIC = (
    "^(("
    + "|".join(sorted(shopify.ORDER_RESOURCES))
    + ")/[a-z_]+|"
    + "|".join(
        sorted(
            t for t in shopify.HANDLED_TOPICS if t.partition("/")[0] not in shopify.ORDER_RESOURCES
        )
    )
    + ")$"
)
_ARGUMENT = re.compile(r"<(?:(?P<converter>\w+)(?:\((?P<args>[^)]*)\))?:)?(?P<name>\w+)>")
#: An id's documented value when the contract names none: a row any install has.
ID_EXAMPLE = 1

bp = Blueprint("openapi", __name__)


@bp.get("/openapi.json")
def openapi_document():
    """The OpenAPI document (public: it holds no secrets, only shapes)."""
    document = current_app.extensions.get("dakiya_openapi")
    if document is None:  # the URL map is fixed once the app is built: build once
        document = current_app.extensions["dakiya_openapi"] = build_document(current_app)
    return jsonify(document)


class ErrorDetailSchema(Schema):
    status = fields.Integer(required=True, metadata={"description": "the HTTP status"})
    code = fields.String(required=True, metadata={"description": "stable machine code"})
    message = fields.String(required=True, metadata={"description": "words for a person"})
    field_errors = fields.Dict(
        data_key="fields",
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": 'each bad field by path, e.g. {"order.total": [...]}'},
    )


class ErrorSchema(Schema):
    """The one error shape of every 4xx and 5xx answer (bot/core/errors.py)."""

    error = fields.Nested(ErrorDetailSchema, required=True)


def build_document(app: Flask) -> dict[str, Any]:
    """The whole document: every `@endpoint` route, then the hand-described ones."""
    marshmallow_plugin = MarshmallowPlugin()
    spec = APISpec(
        title="Dakiya",
        version=_project_version(),
        openapi_version=OPENAPI_VERSION,
        plugins=[marshmallow_plugin],
        info={
            "description": "WhatsApp order notifications: order webhooks, WhatsApp "
            "webhooks, the admin API, health and metrics. Every error has the `Error` shape."
        },
    )
    assert marshmallow_plugin.converter is not None  # made by APISpec's init_spec
    marshmallow_plugin.converter.add_attribute_function(decimal_as_string)
    marshmallow_plugin.converter.add_parameter_attribute_function(example_on_parameter)
    spec.components.schema("Error", schema=ErrorSchema)
    spec.components.security_scheme(
        "adminBasic", {"type": "http", "scheme": "basic", "description": "an admin login"}
    )
    spec.components.security_scheme(
        "metricsToken", {"type": "http", "scheme": "bearer", "description": "METRICS_TOKEN"}
    )
    paths: dict[str, dict[str, Any]] = {}
    operation_ids: set[str] = set()
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view = app.view_functions.get(rule.endpoint)
        contract = getattr(view, "contract", None)
        if not isinstance(contract, Contract):
            continue
        path, parameters = openapi_path(rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            operation = contract_operation(rule, method, view.__doc__, contract, parameters)
            operation["operationId"] = _operation_id(rule, method, operation_ids)
            paths.setdefault(path, {})[method.lower()] = operation
    for path, operations in {**paths, **hand_written_paths()}.items():
        spec.path(path=path, operations=operations)
    return _portable(spec.to_dict())


def decimal_as_string(self, field: fields.Field, ret: dict[str, Any], **kwargs) -> dict:
    """A `Decimal(as_string=True)` field is written as a JSON string ("12.50"), not a
    number: say so (apispec calls every Decimal a number). `self` is apispec's converter."""
    if not (isinstance(field, fields.Decimal) and field.as_string):
        return {}
    nullable = "null" in (ret.get("type") or [])
    digits = r"\d+" if field.places is None else rf"\d+\.\d{{{field.places}}}"
    return {
        "type": ["string", "null"] if nullable else "string",
        "format": "decimal",
        "pattern": rf"^-?{digits}$",
    }


def example_on_parameter(self, field: fields.Field, ret: dict[str, Any], **kwargs) -> dict:
    """A query field's `example` metadata is its parameter's example (where OpenAPI and
    its readers look), not its schema's."""
    example = ret.get("schema", {}).pop("example", None)
    return {} if example is None else {"example": example}


def openapi_path(rule: Rule) -> tuple[str, list[dict[str, Any]]]:
    """Flask's `/a/<int:id>` as OpenAPI's `/a/{id}`, with its path parameters; an
    `<any(a, b):name>` is an enum of its items, which routing alone enforces."""
    parameters = []
    for match in _ARGUMENT.finditer(rule.rule):
        converter = match["converter"] or "default"
        if converter == "any":
            items = [item.strip().strip("'\"") for item in (match["args"] or "").split(",")]
            schema: dict[str, Any] = {"type": "string", "enum": items}
        else:
            schema = dict(CONVERTER_SCHEMAS.get(converter, CONVERTER_SCHEMAS["default"]))
        parameters.append({"name": match["name"], "in": "path", "required": True, "schema": schema})
    return _ARGUMENT.sub(r"{\g<name>}", rule.rule), parameters


def with_examples(parameters: list[dict[str, Any]], examples: dict[str, Any]) -> list[dict]:
    """Path parameters with a documented value each: the contract's, else an id's 1, else
    an enum's first item."""
    documented = []
    for parameter in parameters:
        schema, example = parameter["schema"], examples.get(parameter["name"])
        if example is None and schema.get("type") == "integer":
            example = ID_EXAMPLE
        if example is None and "enum" in schema:
            example = schema["enum"][0]
        documented.append(parameter if example is None else {**parameter, "example": example})
    return documented


def contract_operation(
    rule: Rule,
    method: str,
    docstring: str | None,
    contract: Contract,
    path_parameters: list[dict[str, Any]],
) -> dict[str, Any]:
    """One operation from a contract: its summary and the rest of the docstring, tag,
    parameters, JSON body, success answer and error answers."""
    description = "\n".join((docstring or "").strip().splitlines()[1:]).strip()
    operation: dict[str, Any] = {"summary": contract.summary, "tags": [contract.tag]}
    if description:
        operation["description"] = description
    parameters = with_examples(path_parameters, dict(contract.path_examples))
    if contract.query is not None:
        parameters.append({"in": "query", "schema": contract.query})
    if contract.body is not None:
        content = _json(contract.body)
        if contract.example is not None:
            content["application/json"]["example"] = contract.example
        operation["requestBody"] = {"required": True, "content": content}
    elif contract.uploads:
        examples = contract.example or {}
        operation["requestBody"] = {
            "required": True,
            "content": {
                kind: {"schema": upload_schema(kind)}
                | ({"example": examples[kind]} if kind in examples else {})
                for kind in contract.uploads
            },
        }
    success: dict[str, Any] = {"description": _phrase(contract.status)}
    if contract.media_type != "application/json":
        success["content"] = {contract.media_type: {"schema": _str()}}
    elif contract.response is not None:
        schema: Any = contract.response
        if contract.many:
            schema = {"type": "array", "items": contract.response}  # apispec resolves it
        success["content"] = _json(schema)
    elif contract.status != 204:
        success["content"] = _json({})
    errors = set(contract.errors)
    if rule.endpoint.startswith("admin."):
        operation["security"] = ADMIN_SECURITY
        errors |= set(ADMIN_ERRORS)
        if method not in SAFE_METHODS:
            parameters.append(write_guard_header(json_body=contract.body is not None))
    if parameters:
        operation["parameters"] = parameters
    operation["responses"] = {str(contract.status): success, **error_responses(*errors)}
    return operation


def upload_schema(media_type: str) -> dict[str, Any]:
    """A file sent as the whole body, or as a multipart form's `file` field."""
    if media_type == "multipart/form-data":
        return {
            "type": "object",
            "required": ["file"],
            "properties": {"file": {"type": "string", "contentMediaType": "text/csv"}},
        }
    return _str()


def write_guard_header(*, json_body: bool) -> dict[str, Any]:
    """`X-Requested-With`, which bot.web.auth.check_request_rules asks of an admin write that
    does not send JSON (a cross-site form can send neither without a CORS preflight)."""
    if json_body:
        return _header(
            "X-Requested-With",
            "any value; needed only if the body is not sent as application/json",
            required=False,
            example="dakiya-admin",
        )
    return _header(
        "X-Requested-With", "any value, e.g. dakiya-admin (the write guard)", example="dakiya-admin"
    )


def error_responses(*statuses: int) -> dict[str, Any]:
    """The listed error statuses, and `default`: any other answer is an `Error` too."""
    answers = {str(s): _error(_phrase(s)) for s in sorted(statuses)}
    answers["default"] = _error("any other error")
    return answers


def hand_written_paths() -> dict[str, dict[str, Any]]:
    """Routes that read raw signed bodies or are not JSON APIs: described here by hand."""
    accepted = {
        "type": "object",
        "required": ["event_id", "message_ids", "duplicate"],
        "properties": {
            "event_id": {"type": ["integer", "null"]},
            "message_ids": {"type": "array", "items": {"type": "integer"}},
            "duplicate": {"type": "boolean"},
            "dropped": {
                "type": "string",
                "description": "set when the event was acknowledged but not stored: "
                "`erased` (the number's owner was erased)",
            },
        },
    }
    spooled = {"type": "object", "required": ["spooled"], "properties": {"spooled": _true()}}
    ignored = {"type": "object", "required": ["ignored"], "properties": {"ignored": _str()}}

    def payload(description: str, example: dict[str, Any]) -> dict[str, Any]:
        content = _json({"type": "object", "description": description})
        content["application/json"]["example"] = example
        return {"required": True, "content": content}

    stored = {
        "type": "object",
        "required": ["accepted"],
        "properties": {
            "accepted": {
                **_true(),
                "description": "kept durably; a worker parses and applies it within "
                "seconds (customer messages first). What Dakiya cannot read or does not "
                "act on is then kept raw as unhandled updates (GET "
                "/admin/api/unhandled-updates)",
            },
        },
    }
    order_errors = error_responses(400, 401, 404, 413, 500, 503)
    return {
        "/webhooks/orders": {
            "post": {
                "summary": "Accept a signed order event from any shop (the generic schema)",
                "tags": ["order webhooks"],
                "operationId": "order_event_generic",
                "parameters": [
                    _header(
                        "X-Signature-256",
                        "sha256=<hex HMAC-SHA256 of the raw body> with ORDER_WEBHOOK_SECRET",
                        example=SIGNATURE_EXAMPLE,
                    )
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": GenericEventSchema,
                            "example": examples.GENERIC_ORDER_EVENT,
                        }
                    },
                },
                "responses": {
                    "202": {"description": "stored: the ids created", "content": _json(accepted)},
                    "200": {
                        "description": "a repeated event_id: the same ids, nothing created",
                        "content": _json(accepted),
                    },
                    **order_errors,
                },
            }
        },
        "/webhooks/orders/shopify": {
            "post": {
                "summary": "Accept a Shopify order or fulfillment webhook",
                "tags": ["order webhooks"],
                "operationId": "order_event_shopify",
                "description": "Handled topics: "
                + ", ".join(sorted(shopify.HANDLED_TOPICS))
                + ". Another topic of an order resource is answered 200 ignored; any other "
                "topic is a 400.",
                "parameters": [
                    _header(
                        "X-Shopify-Hmac-Sha256",
                        "base64 HMAC with SHOPIFY_WEBHOOK_SECRET",
                        example=BASE64_SIGNATURE_EXAMPLE,
                    ),
                    _header(
                        "X-Shopify-Topic",
                        "the topic: an order resource's, e.g. orders/create",
                        example="orders/create",
                        pattern=SHOPIFY_TOPIC,
                    ),
                    _header(
                        "X-Shopify-Webhook-Id",
                        "the delivery's idempotency key",
                        example="b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
                        maxLength=MAX_HEADER_ID,
                    ),
                    _header(
                        "X-Shopify-Event-Id",
                        "shared by copies of one event",
                        False,
                        example="98880550-7158-44d4-b7cd-2c97c8a091b5",
                        maxLength=MAX_HEADER_ID,
                    ),
                ],
                "requestBody": payload("an order, checkout or fulfillment", examples.SHOPIFY_ORDER),
                "responses": {
                    "202": {"description": "stored", "content": _json(accepted)},
                    "200": {
                        "description": "a repeated delivery, or a topic Dakiya ignores",
                        "content": _json({"oneOf": [accepted, ignored]}),
                    },
                    **order_errors,
                },
            }
        },
        "/webhooks/orders/woocommerce": {
            "post": {
                "summary": "Accept a WooCommerce order webhook (or its creation ping)",
                "tags": ["order webhooks"],
                "operationId": "order_event_woocommerce",
                "description": "Handled topics: "
                + ", ".join(sorted(woocommerce.HANDLED_TOPICS))
                + ". Another core or action topic is answered 200 ignored. The one request "
                "without these headers is WooCommerce's own creation ping, an unsigned "
                "form-encoded `webhook_id=<n>`, answered 200 ignored.",
                "parameters": [
                    _header(
                        "X-WC-Webhook-Signature",
                        "base64 HMAC with WOOCOMMERCE_WEBHOOK_SECRET",
                        example=BASE64_SIGNATURE_EXAMPLE,
                    ),
                    _header(
                        "X-WC-Webhook-Topic",
                        "<resource>.<event> of a core resource, or action.<hook>",
                        example="order.created",
                        pattern=WOOCOMMERCE_TOPIC,
                    ),
                    _header(
                        "X-WC-Webhook-Delivery-ID",
                        "the delivery's id",
                        example="8f9a3c2e1b7d4f60a5e2c9b1d3f7a8e4",
                        maxLength=MAX_HEADER_ID,
                    ),
                ],
                "requestBody": payload("the order (REST API v3)", examples.WOOCOMMERCE_ORDER),
                "responses": {
                    "202": {
                        "description": "stored (or spooled while the database is down)",
                        "content": _json({"oneOf": [accepted, spooled]}),
                    },
                    "200": {
                        "description": "a repeated delivery, the ping, or an ignored status",
                        "content": _json({"oneOf": [accepted, ignored]}),
                    },
                    **order_errors,
                },
            }
        },
        "/webhooks/whatsapp/meta": {
            "get": {
                "summary": "Meta's subscription handshake: echo hub.challenge",
                "tags": ["whatsapp webhooks"],
                "operationId": "meta_verify_subscription",
                "parameters": [
                    _query("hub.mode", "must be subscribe", "subscribe"),
                    _query("hub.verify_token", "META_VERIFY_TOKEN", "the-verify-token"),
                    _query("hub.challenge", "echoed back", "1158201444"),
                ],
                "responses": {
                    "200": {
                        "description": "the challenge, as plain text",
                        "content": {"text/plain": {"schema": _str()}},
                    },
                    # 429: too many wrong verify tokens from one address (WEBHOOK_RATE_LIMIT).
                    **error_responses(403, 429),
                },
            },
            "post": _whatsapp_post(
                "meta",
                _header(
                    "X-Hub-Signature-256",
                    "sha256=<hex HMAC> with META_APP_SECRET",
                    example=SIGNATURE_EXAMPLE,
                ),
                payload("Meta's own payload", examples.META_MESSAGE),
                stored,
                503,
            ),
        },
        "/webhooks/whatsapp/interakt": {
            "post": _whatsapp_post(
                "interakt",
                _header(
                    "Interakt-Signature",
                    "sha256=<hex HMAC> with INTERAKT_WEBHOOK_SECRET",
                    example=SIGNATURE_EXAMPLE,
                ),
                payload("Interakt's own payload", examples.INTERAKT_MESSAGE),
                {"oneOf": [stored, spooled]},
            )
        },
        "/healthz": {
            "get": {
                "summary": "Liveness: the process is up",
                "tags": ["operations"],
                "operationId": "liveness",
                "responses": {
                    "200": {
                        "description": "up",
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["status"],
                                "properties": {"status": {"const": "ok"}},
                            }
                        ),
                    }
                },
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: the database and Redis both answer",
                "tags": ["operations"],
                "operationId": "readiness",
                "responses": {
                    "200": {"description": "ready", "content": _json(_readiness())},
                    "503": {"description": "not ready", "content": _json(_readiness())},
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "tags": ["operations"],
                "operationId": "metrics",
                "security": [{"metricsToken": []}, *ADMIN_SECURITY],
                "responses": {
                    "200": {
                        "description": "the Prometheus text format",
                        "content": {"text/plain": {"schema": _str()}},
                    },
                    **error_responses(401),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "tags": ["operations"],
                "operationId": "openapi_document",
                "responses": {
                    "200": {"description": "OpenAPI", "content": _json({"type": "object"})}
                },
            }
        },
    }


def _whatsapp_post(
    provider: str, signature: dict, body: dict, answer: dict, *more_errors: int
) -> dict[str, Any]:
    return {
        "summary": f"Accept delivery receipts and customer messages from {provider}",
        "tags": ["whatsapp webhooks"],
        "operationId": f"whatsapp_update_{provider}",
        "parameters": [signature],
        "requestBody": body,
        "description": "Any JSON body with a valid signature is taken (200): kept as sent, "
        "with one INSERT, and taken in by a worker, where what Dakiya cannot read or does "
        "not act on is kept raw as unhandled updates and the rest is stored and applied. "
        "Only a bad signature (401) or a body that is not JSON (400) is refused; 503 while "
        "the database is down (Meta redelivers).",
        "responses": {
            "200": {"description": "taken", "content": _json(answer)},
            **error_responses(400, 401, 413, *more_errors),
        },
    }


def _readiness() -> dict[str, Any]:
    state = {"enum": ["ok", "unavailable"]}
    return {
        "type": "object",
        "required": ["status", "checks"],
        "properties": {
            "status": state,
            "checks": {
                "type": "object",
                "properties": {"database": state, "redis": state},
            },
        },
    }


def _json(schema: Any) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": _json({"$ref": "#/components/schemas/Error"})}


def _header(
    name: str,
    description: str,
    required: bool = True,
    *,
    example: str | None = None,
    **schema: Any,
) -> dict[str, Any]:
    """A header parameter; `schema` narrows the value (a pattern, an enum)."""
    header = {
        "name": name,
        "in": "header",
        "required": required,
        "description": description,
        # an empty header counts as absent
        "schema": {"type": "string", "minLength": 1, **schema},
    }
    return header if example is None else {**header, "example": example}


def _query(name: str, description: str, example: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": _str(),
        "example": example,
    }


def _str() -> dict[str, str]:
    return {"type": "string"}


def _true() -> dict[str, Any]:
    return {"const": True}


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def _operation_id(rule: Rule, method: str, taken: set[str]) -> str:
    """The endpoint's name; with the method when one view serves several, and numbered
    when one view serves several rules."""
    name = rule.endpoint.replace(".", "_")
    if len((rule.methods or set()) - {"HEAD", "OPTIONS"}) > 1:
        name = f"{name}_{method.lower()}"
    unique, n = name, 1
    while unique in taken:
        n += 1
        unique = f"{name}_{n}"
    taken.add(unique)
    return unique


def _portable(value: Any, key: str = "") -> Any:
    """apispec copies marshmallow's Python-isms; make them plain JSON Schema: Decimal
    bounds as numbers, `Regexp` patterns (matched from the start, `\\Z` for the end) as
    anchored ECMA-262 patterns, and marshmallow's `url` format as `uri`."""
    if isinstance(value, dict):
        return {k: _portable(item, k) for k, item in value.items()}
    if isinstance(value, list):
        return [_portable(item) for item in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if key == "pattern" and isinstance(value, str):
        body = value.removeprefix("^")
        body = body[:-2] + "$" if body.endswith("\\Z") else body
        return "^" + body
    if key == "format" and value == "url":
        return "uri"
    return value


def _project_version() -> str:
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    try:
        return tomllib.loads(pyproject.read_text())["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "0"
