"""Hostile input on every webhook: real payloads mutated at random, correctly signed.

Whatever arrives, the answer is never a 5xx; a 4xx uses the one error shape and stores
nothing; a 2xx stores only well-formed rows; random bytes are refused; and the same
signed delivery posted twice is stored once.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from peewee import CharField, TextField

from bot.core.models import Customer, InboundMessage, Message, OrderEvent, State, StatusEvent
from bot.core.signing import sign_hmac
from tests.conftest import SECRETS, load_payload

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

WATCHED = (OrderEvent, Message, StatusEvent, InboundMessage, Customer)
E164 = re.compile(r"^\+[1-9]\d{6,14}$")


# --- the endpoints and how each sender signs ------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    path: str
    payloads: tuple[str, ...]

    def headers(self, name: str, raw: bytes, delivery: str) -> dict[str, str]:
        raise NotImplementedError


class Generic(Endpoint):
    def headers(self, name, raw, delivery):
        return {"X-Signature-256": "sha256=" + sign_hmac(SECRETS["order_webhook_secret"], raw)}


class Shopify(Endpoint):
    def headers(self, name, raw, delivery):
        return {
            "X-Shopify-Hmac-Sha256": sign_hmac(SECRETS["shopify_webhook_secret"], raw, "base64"),
            "X-Shopify-Topic": name.split("/")[1].replace("_cod", "").replace("_", "/", 1),
            "X-Shopify-Shop-Domain": "asha-store.myshopify.com",
            "X-Shopify-API-Version": "2025-10",
            "X-Shopify-Triggered-At": "2026-11-25T06:10:02.123Z",
            "X-Shopify-Webhook-Id": delivery,
            "X-Shopify-Event-Id": f"evt-{delivery}",
        }


class Woo(Endpoint):
    def headers(self, name, raw, delivery):
        topic = "order.created" if name.endswith("created") else "order.updated"
        return {
            "X-WC-Webhook-Source": "https://shop.example.in/",
            "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Resource": "order",
            "X-WC-Webhook-Event": topic.split(".")[1],
            "X-WC-Webhook-Signature": sign_hmac(
                SECRETS["woocommerce_webhook_secret"], raw, "base64"
            ),
            "X-WC-Webhook-ID": "3",
            "X-WC-Webhook-Delivery-ID": delivery,
        }


class Meta(Endpoint):
    def headers(self, name, raw, delivery):
        return {"X-Hub-Signature-256": "sha256=" + sign_hmac(SECRETS["meta_app_secret"], raw)}


class Interakt(Endpoint):
    def headers(self, name, raw, delivery):
        return {
            "Interakt-Signature": "sha256=" + sign_hmac(SECRETS["interakt_webhook_secret"], raw)
        }


def _keyed(file: str, leave_out: str = "\0") -> tuple[str, ...]:
    return tuple(f"{file}#{key}" for key in load_payload(file) if not key.startswith(leave_out))


GENERIC = Generic("/webhooks/orders", ("generic/order_shipped", "generic/order_placed_minimal"))
SHOPIFY = Shopify(
    "/webhooks/orders/shopify",
    (
        "shopify/orders_create",
        "shopify/orders_create_cod",
        "shopify/orders_fulfilled",
        "shopify/orders_cancelled",
        "shopify/fulfillments_create",
        "shopify/fulfillments_update",
        "shopify/checkouts_create",
    ),
)
WOO = Woo(
    "/webhooks/orders/woocommerce",
    ("woocommerce/order_created", "woocommerce/order_updated_completed"),
)
META = Meta(
    "/webhooks/whatsapp/meta",
    _keyed("meta/messages") + _keyed("meta/statuses") + _keyed("meta/other"),
)
INTERAKT = Interakt("/webhooks/whatsapp/interakt", _keyed("interakt/webhooks"))
ENDPOINTS = (GENERIC, SHOPIFY, WOO, META, INTERAKT)


def real_payload(name: str) -> Any:
    file, _, key = name.partition("#")
    body = copy.deepcopy(load_payload(file))
    return body[key] if key else body


def freshen(body: Any, fresh: str) -> Any:
    """Give the event its own ids so that each example is processed, not deduplicated."""
    if not isinstance(body, dict):
        return body
    if "event_id" in body:
        body["event_id"] = f"evt_{fresh}"
    for change in (
        change
        for entry in body.get("entry") or []
        for change in (entry.get("changes") or [])
        if isinstance(change, dict)
    ):
        value = change.get("value") or {}
        for item in (value.get("messages") or []) + (value.get("statuses") or []):
            item["id"] = f"wamid.{fresh}"
    message = (
        (body.get("data") or {}).get("message") if isinstance(body.get("data"), dict) else None
    )
    if isinstance(message, dict) and "id" in message:
        message["id"] = fresh
    return body


# --- mutations -------------------------------------------------------------------------

# Escaped surrogate pairs ("\\ud83d\\ude00" on the wire, as json.dumps writes any
# astral character) and lone surrogates, which no database can store: shops get a 400,
# WhatsApp payloads have them removed.
ESCAPED_PAIRS = st.sampled_from(
    ["\U0001f600", "a\U0001d11ez", "\U00010000\U0010fffd", "e\ud800", "\udfff!"]
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=8), children, max_size=4),
    ),
    max_leaves=10,
)
HUGE_NUMBERS = st.sampled_from(
    [10**400, -(10**400), 2**64, -(2**63) - 1, 1e308, -1e308, 5e-324, 0, -0.0]
)
LONG_STRINGS = st.builds(
    lambda char, n: char * n,
    st.sampled_from(["a", "9", "अ", "😀", " ", "\x00"]),
    st.sampled_from([256, 4096, 100_000]),
)
UNICODE = st.one_of(
    st.text(alphabet=st.characters(codec=None), min_size=1, max_size=40), ESCAPED_PAIRS
)


def nested(depth: int) -> Any:
    value: Any = "deep"
    for level in range(depth):
        value = [value] if level % 2 else {"x": value}
    return value


NESTED = st.builds(nested, st.sampled_from([10, 100, 500, 900]))


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        found.extend(paths(item, (*prefix, key)))
    return found


def get(value: Any, path: tuple) -> Any:
    for key in path:
        value = value[key]
    return value


def other_type(current: Any) -> st.SearchStrategy:
    return json_values.filter(lambda new: type(new) is not type(current))


@st.composite
def mutated(draw, endpoint: Endpoint) -> tuple[str, Any]:
    name = draw(st.sampled_from(endpoint.payloads))
    body = freshen(real_payload(name), uuid.UUID(int=draw(st.integers(0, 2**64))).hex)
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(paths(body)))
        kind = draw(
            st.sampled_from(
                ["delete", "retype", "long", "unicode", "nested", "huge", "empty", "list"]
            )
        )
        if kind == "delete" and where:
            parent = get(body, where[:-1])
            del parent[where[-1]]
            continue
        if kind == "empty" and not where:
            body = {}
            continue
        if kind == "list" and not where:
            body = [body]
            continue
        new = {
            "delete": st.just(None),
            "retype": other_type(get(body, where)),
            "long": LONG_STRINGS,
            "unicode": UNICODE,
            "nested": NESTED,
            "huge": HUGE_NUMBERS,
            "empty": st.sampled_from([{}, [], ""]),
            "list": st.just([get(body, where)]),
        }[kind]
        value = draw(new)
        if where:
            get(body, where[:-1])[where[-1]] = value
        else:
            body = value
    return name, body


# --- what must hold --------------------------------------------------------------------


def high_water() -> dict:
    return {model: model.select().count() for model in WATCHED} | {
        (model, "max"): max([row.id for row in model.select(model.id)] or [0]) for model in WATCHED
    }


def new_rows(before: dict, model) -> list:
    return list(model.select().where(model.id > before[(model, "max")]))


def assert_well_formed(row) -> None:
    for name, field in row._meta.fields.items():
        value = row.__data__.get(name)
        if isinstance(value, str) and isinstance(field, CharField | TextField):
            if isinstance(field, CharField) and field.max_length:
                assert len(value) <= field.max_length, (type(row).__name__, name, len(value))
            assert "\x00" not in value, (type(row).__name__, name)
            value.encode("utf-8")  # a lone surrogate cannot be stored by Postgres


def check(response, before: dict) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    if 400 <= response.status_code < 500:
        body = response.get_json(silent=True)
        assert isinstance(body, dict) and set(body) == {"error"}, response.get_data()[:300]
        error = body["error"]
        assert error["status"] == response.status_code
        assert isinstance(error["code"], str) and error["code"]
        assert isinstance(error["message"], str)
        assert set(error) <= {"status", "code", "message", "fields"}
        after = high_water()
        assert {m: after[m] for m in WATCHED} == {m: before[m] for m in WATCHED}
        return
    for model in WATCHED:
        for row in new_rows(before, model):
            assert_well_formed(row)
    for message in new_rows(before, Message):
        assert E164.match(message.phone) or (
            message.state == State.SUPPRESSED and message.reason
        ), (message.phone, message.state, message.reason)
    for customer in new_rows(before, Customer):
        assert E164.match(customer.phone), customer.phone
    for inbound in new_rows(before, InboundMessage):
        assert re.fullmatch(r"\+?\d{6,15}", inbound.phone), inbound.phone


def post(client, endpoint: Endpoint, name: str, raw: bytes, delivery: str):
    return client.post(
        endpoint.path,
        data=raw,
        headers=endpoint.headers(name, raw, delivery),
        content_type="application/json",
    )


def fuzz(client, endpoint: Endpoint, data) -> None:
    name, body = data.draw(mutated(endpoint), label="payload")
    raw = json.dumps(body).encode()
    delivery = f"d-{data.draw(st.uuids(), label='delivery')}"
    before = high_water()
    check(post(client, endpoint, name, raw, delivery), before)


@FUZZ
@given(data=st.data())
def test_generic_orders_survive_mutated_payloads(client, data):
    fuzz(client, GENERIC, data)


@FUZZ
@given(data=st.data())
def test_shopify_survives_mutated_payloads(client, data):
    fuzz(client, SHOPIFY, data)


@FUZZ
@given(data=st.data())
def test_woocommerce_survives_mutated_payloads(client, data):
    fuzz(client, WOO, data)


@FUZZ
@given(data=st.data())
def test_meta_survives_mutated_payloads(client, data):
    fuzz(client, META, data)


@FUZZ
@given(data=st.data())
def test_interakt_survives_mutated_payloads(client, data):
    fuzz(client, INTERAKT, data)


@settings(FUZZ, max_examples=15)
@given(raw=st.one_of(st.binary(max_size=300), st.just(b""), st.just(b"\xff\xfe{}")))
def test_random_signed_bytes_are_refused_on_every_endpoint(client, raw):
    for endpoint in ENDPOINTS:
        before = high_water()
        response = post(client, endpoint, endpoint.payloads[0], raw, f"d-{uuid.uuid4()}")
        check(response, before)
        assert response.status_code != 202


def test_the_same_signed_delivery_twice_is_stored_once(client):
    for endpoint in ENDPOINTS:
        for name in endpoint.payloads:
            raw = json.dumps(freshen(real_payload(name), uuid.uuid4().hex)).encode()
            delivery = f"d-{uuid.uuid4()}"
            first = post(client, endpoint, name, raw, delivery)
            assert first.status_code < 300, (name, first.get_data(as_text=True)[:300])
            counts = high_water()
            again = post(client, endpoint, name, raw, delivery)
            assert again.status_code < 300, (name, again.get_data(as_text=True)[:300])
            assert high_water() == counts, name
