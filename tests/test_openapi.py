"""`/openapi.json`: a valid OpenAPI document, built from the routes' own contracts, and
honoured by the app: schemathesis, in-process, finds no 5xx and no answer off the schema."""

from __future__ import annotations

import contextlib
import json
import re
from collections import Counter
from datetime import timedelta
from zoneinfo import available_timezones

import pytest
import schemathesis
from babel.localedata import locale_identifiers
from hypothesis import HealthCheck, Phase, example, given
from hypothesis import settings as hypothesis_settings
from marshmallow import Schema, ValidationError, fields
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.generation.hypothesis.examples import generate_one
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from werkzeug.exceptions import MethodNotAllowed

from bot.campaigns.campaigns import CampaignState
from bot.campaigns.experiments import Phase as ExperimentPhase
from bot.core import rate_card, runtime, spool
from bot.core.models import (
    Campaign,
    EventKind,
    Experiment,
    Message,
    Reason,
    State,
    TemplateOverride,
    utcnow,
)
from bot.core.signing import sign_hmac
from bot.intake import dead_letters
from bot.web import openapi_examples as examples
from bot.web.admin.spend import CARD_EXAMPLE
from bot.web.contract import PageQuery, endpoint
from tests.conftest import ADMIN, SECRETS, empty_database
from tests.factories import queued_message

#: Deterministic and bounded: the same cases on every run, no example database, no
#: shrinking (a failure is reported as found), at most 12 cases per operation.
CONTRACT_RUN = hypothesis_settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=list(HealthCheck),
)
#: Every answer: no 5xx, a documented status, content type, headers and body.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


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
    from bot.web.openapi import openapi_path

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
    from bot.web.openapi import build_document

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

#: How each webhook's documented signature header is made from the raw body.
SIGNERS = {
    "X-Signature-256": lambda raw: "sha256=" + sign_hmac(SECRETS["order_webhook_secret"], raw),
    "X-Shopify-Hmac-Sha256": lambda raw: sign_hmac(
        SECRETS["shopify_webhook_secret"], raw, "base64"
    ),
    "X-WC-Webhook-Signature": lambda raw: sign_hmac(
        SECRETS["woocommerce_webhook_secret"], raw, "base64"
    ),
    "X-Hub-Signature-256": lambda raw: "sha256=" + sign_hmac(SECRETS["meta_app_secret"], raw),
    "Interakt-Signature": lambda raw: (
        "sha256=" + sign_hmac(SECRETS["interakt_webhook_secret"], raw)
    ),
}
#: Query parameters that authenticate (Meta's subscription handshake).
QUERY_CREDENTIALS = {"hub.mode": "subscribe", "hub.verify_token": SECRETS["meta_verify_token"]}
#: Answers that mean the request never reached its handler.
TURNED_AWAY = {401, 403, 429}
#: Known rows for `{..._id}` and `{phone}` path parameters: a generated one is folded
#: onto rows 1..3 so that most cases find a stored row (the handler's success path).
KNOWN_IDS = 3
#: Operations no client following the document can get a 2xx from in this run, and why.
#: Every other operation must: its success answer is what the run checks the most.
NO_SUCCESS_HERE: dict[str, str] = {}


@pytest.fixture
def api_app(make_app, settings):
    """The app with request limits out of the way: hundreds of cases come from one address."""
    generous = {
        name: "100000/minute"
        for name in ("admin_rate_limit", "webhook_rate_limit", "default_rate_limit")
        if hasattr(settings, name)
    }
    return make_app(settings.replace(**generous))


def lived_in() -> None:
    """An install in use, made afresh for each operation: the rows the document's
    examples name, each in the state its operation needs, with ids from 1.

    Customers, orders and messages 1..KNOWN_IDS (message 1 queued: cancel; 2 failed:
    retry; 3 deferred by quiet hours: send now); campaigns 1 draft (launch, cancel),
    2 scheduled (pause), 3 paused (resume);
    experiments 1 draft (start), 2 running with a "button" variant (stop, rollout),
    3 stopped; dead letter 1, a generic order event a since-fixed bug refused (retry,
    discard); an admin's override of the "shipped" template (reset); an admin's rate
    card (reset).
    """
    empty_database()
    now = utcnow()
    for n in range(1, KNOWN_IDS + 1):
        queued_message(event_id=f"evt-{n}", order_id=str(1000 + n), phone=known_phone(n))
    Message.update(state=State.FAILED, failed_at=now, error_code="131026").where(
        Message.id == 2
    ).execute()
    Message.update(
        state=State.DEFERRED, reason=Reason.QUIET_HOURS, next_attempt_at=now + timedelta(hours=9)
    ).where(Message.id == 3).execute()
    for state in (CampaignState.DRAFT, CampaignState.SCHEDULED, CampaignState.PAUSED):
        Campaign.create(
            name=f"Festive sale ({state})",
            template="festive_sale",
            languages=["en", "hi"],
            params=["customer_name"],
            fallbacks={"customer_name": "there"},
            state=state,
            created_by="admin",
            launched_at=None if state == CampaignState.DRAFT else now,
        )
    variants = [{"name": "link", "weight": 1}, {"name": "button", "weight": 1}]
    for state, kind in (
        (ExperimentPhase.DRAFT, "shipped"),
        (ExperimentPhase.RUNNING, "delivered"),
        (ExperimentPhase.STOPPED, "placed"),
    ):
        Experiment.create(
            name=f"{kind} copy", event_kind=kind, variants=variants, goal="read", state=state
        )
    TemplateOverride.create(
        event_kind="shipped",
        mapping={"template": "order_shipped_v2", "languages": ["en"], "body": ["order_number"]},
        updated_by="admin",
    )
    runtime.save_rate_card(rate_card.parse(CARD_EXAMPLE, origin="admin"), "admin")
    body = json.dumps({**examples.GENERIC_ORDER_EVENT, "event_id": "evt-dead-1"}).encode()
    entry = spool.Entry(id="1764000000000-0", kind="order:generic", body=body, headers={})
    dead_letters.record(entry, RuntimeError("a bug, since fixed"), now)


def credentials(case) -> dict:
    """What gets `case` past authentication: the admin's basic auth where the operation
    asks for it, the signature over the exact body sent, Meta's verify token. The write
    guard's `X-Requested-With` is not added here: it is sent because the document asks
    for it."""
    operation = case.operation
    kwargs: dict = {"headers": {}}
    schemes = {name for need in operation.definition.raw.get("security", []) for name in need}
    if "adminBasic" in schemes:
        kwargs["headers"]["Authorization"] = ADMIN["Authorization"]
    headers = {p.name for p in operation.headers}
    if headers & SIGNERS.keys():
        raw = b"" if case.body is None else json.dumps(case.body).encode()
        kwargs["data"] = raw
        kwargs["headers"] |= {name: SIGNERS[name](raw) for name in headers & SIGNERS.keys()}
    query = {p.name for p in operation.query}
    if query & QUERY_CREDENTIALS.keys():
        case.query = {**(case.query or {}), **QUERY_CREDENTIALS}
    known_phones = {known_phone(n) for n in range(1, KNOWN_IDS + 1)}
    for parameter in operation.path_parameters:
        value = (case.path_parameters or {}).get(parameter.name)
        if isinstance(value, int):  # 1..3 stay as they are: the documented examples
            case.path_parameters[parameter.name] = 1 + (value - 1) % KNOWN_IDS
        elif parameter.name == "phone" and isinstance(value, str) and value not in known_phones:
            case.path_parameters[parameter.name] = known_phone(1 + len(value) % KNOWN_IDS)
    return kwargs


def documented_cases(operation) -> list:
    """The requests the document's own examples make of `operation` (schemathesis's
    examples phase: each strategy fills in what the examples leave out, seeded)."""
    return [generate_one(strategy) for strategy in operation.get_strategies_from_examples()]


def known_phone(n: int) -> str:
    return f"+9198123456{n:02d}"


def test_the_app_honours_its_openapi_document(api_app, subtests):
    """Every operation in the document, called as a client that read it (with valid
    credentials and signatures), first with the document's own examples, then with
    generated requests, each operation on a fresh install in use: no 5xx, and every
    answer's status, content type, headers and body are the documented ones. And every
    operation succeeds at least once (a 2xx, whose body is checked against the document),
    save the few named in NO_SUCCESS_HERE with their reason."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", api_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    answers: dict[str, Counter] = {operation.label: Counter() for operation in operations}
    for operation in operations:

        @given(case=operation.as_strategy())
        @CONTRACT_RUN
        def honours_the_document(case):
            kwargs = credentials(case)
            response = case.call(**kwargs)
            answers[case.operation.label][response.status_code] += 1
            case.validate_response(response, checks=CHECKS)

        for case in documented_cases(operation):  # the explicit phase runs these first
            honours_the_document = example(case=case)(honours_the_document)
        lived_in()
        with subtests.test(msg=operation.label):
            honours_the_document()

    assert NO_SUCCESS_HERE.keys() <= answers.keys(), "NO_SUCCESS_HERE names a gone operation"
    unsuccessful = {
        label: dict(counts)
        for label, counts in answers.items()
        if not any(200 <= status < 300 for status in counts) and label not in NO_SUCCESS_HERE
    }
    assert not unsuccessful, f"operations that never answered 2xx: {unsuccessful}"


def test_a_method_a_path_does_not_have_is_405_with_allow(app, client, document):
    """Every documented path answers an undocumented method with 405, the one error
    shape and an `Allow` header naming the documented methods (RFC 9110)."""
    routes = app.url_map.bind("localhost")
    checked = 0
    for path, operations in document["paths"].items():
        url = documented_url(path, operations)
        documented = {method.upper() for method in operations}
        for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE"} - documented):
            with contextlib.suppress(MethodNotAllowed):
                routes.match(url, method=method)
                continue  # another route serves it (/customers/bulk is a <phone> too)
            answer = client.open(url, method=method)
            assert answer.status_code == 405, f"{method} {path}"
            assert answer.get_json()["error"]["code"] == "method_not_allowed"
            allowed = {m.strip() for m in answer.headers.get("Allow", "").split(",")}
            # Allow is about the URL: it may also name another route's methods.
            assert documented <= allowed and method not in allowed, f"{method} {path}"
            checked += 1
    assert checked > len(document["paths"])


def documented_url(path: str, operations: dict) -> str:
    """`path` with each `{name}` replaced by its documented example."""
    values = {
        parameter["name"]: parameter["example"]
        for operation in operations.values()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "path"
    }
    return re.sub(r"\{([^}]*)\}", lambda match: str(values[match[1]]), path)


def test_every_request_part_has_a_documented_example(document):
    """What a client must send, shown by example: every request body's media type, path
    parameter and required header (an API user copies these; the contract run sends them)."""
    missing = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" or parameter.get("required"):
                    if "example" not in parameter:
                        missing.append(f"{label} {parameter['in']} {parameter['name']}")
            for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
                if "example" not in content and media_type != "application/csv":
                    missing.append(f"{label} body {media_type}")
    assert not missing


def test_the_documented_shapes_admit_every_language_and_time_zone_the_server_takes(document):
    """The document's language and time zone patterns refuse nothing the server accepts."""
    fields = document["components"]["schemas"]["CustomerCreate"]["properties"]
    language = re.compile(fields["language"]["pattern"])
    time_zone = re.compile(fields["timezone"]["pattern"])
    assert all(language.match(code) for code in locale_identifiers())
    assert all(language.match(code.replace("_", "-")) for code in locale_identifiers())
    assert all(time_zone.match(name) for name in available_timezones())
    assert not language.match("en; DROP") and not time_zone.match("../etc/passwd")


def test_an_integer_setting_given_as_a_fraction_is_refused_naming_it(client):
    """A cap of 2.5 is a 400 naming the field, not silently 2; the document says integer."""
    answer = client.patch("/admin/api/settings", json={"marketing_daily_cap": 2.5}, headers=ADMIN)
    assert answer.status_code == 400
    assert "marketing_daily_cap" in answer.get_json()["error"]["fields"]
    assert client.get("/admin/api/settings", headers=ADMIN).get_json()["marketing_daily_cap"] != 2
    document = client.get("/openapi.json").get_json()
    cap = document["components"]["schemas"]["PolicySettings"]["properties"]["marketing_daily_cap"]
    assert cap["type"] == ["integer", "null"]  # null: back to the environment's value
