"""`/openapi.json`: a valid OpenAPI document, built from the routes' own contracts, and
honoured by the app: schemathesis, in-process, finds no 5xx and no answer off the schema."""

from __future__ import annotations

import time

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from marshmallow import Schema, ValidationError, fields
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error, response_schema_conformance

from bot.api import PageQuery, endpoint
from bot.models import EventKind
from tests.conftest import ADMIN

#: Deterministic and bounded: the same cases on every run, no example database, no
#: shrinking (a failure is reported as found), at most 15 cases per operation.
hypothesis_settings.register_profile(
    "openapi-contract",
    max_examples=15,
    deadline=None,
    derandomize=True,
    database=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=list(HealthCheck),
)
#: Wall-clock budget for the whole schemathesis run; cases past it are not sent.
BUDGET_SECONDS = 40.0
CHECKS = [not_a_server_error, response_schema_conformance]


@pytest.fixture
def document(client) -> dict:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def contract_routes(app) -> set[tuple[str, str]]:
    """(method, Flask rule) of every route declared with `@endpoint`."""
    routes = set()
    for rule in app.url_map.iter_rules():
        if hasattr(app.view_functions[rule.endpoint], "contract"):
            routes |= {(m, rule.rule) for m in rule.methods - {"HEAD", "OPTIONS"}}
    return routes


def test_the_document_is_public_and_valid_openapi(client, document):
    assert "Authorization" not in client.get("/openapi.json").request.headers
    assert document["openapi"].startswith("3.")
    validate(document)  # raises on any violation of the OpenAPI specification


def test_every_route_with_a_contract_is_documented(app, document):
    from bot.openapi import openapi_path

    documented = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    rules = {rule.rule: rule for rule in app.url_map.iter_rules()}
    for method, rule in contract_routes(app):
        path, _ = openapi_path(rules[rule])
        assert (method, path) in documented, f"{method} {rule} is missing from /openapi.json"


def test_the_generic_order_event_schema_is_published(document):
    operation = document["paths"]["/webhooks/orders"]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    event = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(event["required"]) == {"event_id", "event", "order", "customer"}
    assert event["additionalProperties"] is False  # unknown fields are rejected
    assert event["properties"]["event"]["enum"] == [kind.value for kind in EventKind]
    assert {p["name"] for p in operation["parameters"]} == {"X-Signature-256"}
    assert {"202", "200", "400", "401", "413"} <= set(operation["responses"])
    assert (
        document["components"]["schemas"]["GenericOrder"]["properties"]["currency"]["pattern"]
        == "^[A-Z]{3}$"
    )
    assert (
        "INR" in document["components"]["schemas"]["GenericOrder"]["properties"]["currency"]["enum"]
    )


def test_ids_past_64_bits_are_not_found_rather_than_overflowing(client):
    response = client.get(f"/admin/api/messages/{2**64}", headers=ADMIN)
    assert response.status_code == 404
    with pytest.raises(ValidationError):  # a page cursor past 64 bits is a 400
        PageQuery().load({"after": str(2**64)})


class ProbeBody(Schema):
    note = fields.String(required=True)


class ProbeItem(Schema):
    id = fields.Integer(required=True)
    note = fields.String(allow_none=True)


def test_an_admin_contract_becomes_an_operation(app):
    """What `@endpoint` declares is what the document says, plus the admin's errors."""

    @endpoint(tag="probes", query=PageQuery, body=ProbeBody, response=ProbeItem, many=True,
              status=201, errors=(404,))  # fmt: skip
    def make_probes(item_id: int, query: dict, body: dict):
        """Make probes.

        Only for this test."""

    app.add_url_rule(
        "/admin/api/probes/<int:item_id>", "admin.make_probes", make_probes, methods=["POST"]
    )
    from bot.openapi import build_document

    operation = build_document(app)["paths"]["/admin/api/probes/{item_id}"]["post"]
    assert operation["summary"] == "Make probes."
    assert operation["description"] == "Only for this test."
    assert operation["tags"] == ["probes"]
    assert operation["security"] == [{"adminBasic": []}]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert parameters["item_id"]["in"] == "path"
    assert parameters["item_id"]["schema"]["type"] == "integer"
    assert parameters["limit"]["in"] == parameters["after"]["in"] == "query"
    assert parameters["limit"]["schema"]["maximum"] == 100
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/ProbeBody"}
    created = operation["responses"]["201"]["content"]["application/json"]["schema"]
    assert created == {"type": "array", "items": {"$ref": "#/components/schemas/ProbeItem"}}
    assert {"400", "401", "403", "404", "429", "default"} <= set(operation["responses"])


# --- the app honours its document (schemathesis, in-process) ---------------------------


@pytest.fixture
def api_app(make_app, settings):
    """The app with request limits out of the way: hundreds of cases come from one address."""
    generous = {
        name: "100000/minute"
        for name in ("admin_rate_limit", "webhook_rate_limit", "default_rate_limit")
        if hasattr(settings, name)
    }
    return make_app(settings.replace(**generous))


def test_the_app_honours_its_openapi_document(api_app, subtests):
    """No 5xx, and every answer matches its documented schema (errors: the `Error`
    shape). The webhooks are included: unsigned, they must answer a documented 401."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", api_app)
    deadline = time.monotonic() + BUDGET_SECONDS
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis_settings(hypothesis_settings.get_profile("openapi-contract"))
        def honours_the_document(case):
            if time.monotonic() < deadline:
                case.call_and_validate(headers=ADMIN, checks=CHECKS)

        with subtests.test(msg=operation.label):
            honours_the_document()
