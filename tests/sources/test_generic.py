"""The generic order webhook: its signature, its published schema, and the OrderEvent it makes."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.core.models import EventKind
from bot.core.signing import sign_hmac
from bot.intake.sources.base import PayloadError, SignatureError
from bot.intake.sources.generic import GenericSource

SECRET = "generic-test-secret"
PAYLOADS = Path(__file__).parent.parent / "payloads" / "generic"


def load(name: str) -> dict[str, Any]:
    return json.loads((PAYLOADS / name).read_bytes())


def raw(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {
        "X-Signature-256": "sha256=" + sign_hmac(secret, body),
        "Content-Type": "application/json",
    }


def parse(data: dict[str, Any]) -> Any:
    body = json.dumps(data).encode()
    source = GenericSource(SECRET)
    source.verify(body, signed(body))
    return source.parse(body, signed(body))


def problems(data: Any) -> dict[str, list[str]]:
    body = data if isinstance(data, bytes) else json.dumps(data).encode()
    with pytest.raises(PayloadError) as caught:
        GenericSource(SECRET).parse(body, signed(body))
    return caught.value.fields


# --- signature ------------------------------------------------------------------------------


def test_body_signed_with_our_secret_verifies():
    body = raw("order_shipped.json")
    GenericSource(SECRET).verify(body, signed(body))


def test_signature_header_is_matched_whatever_its_case():
    body = raw("order_shipped.json")
    GenericSource(SECRET).verify(body, {"x-signature-256": signed(body)["X-Signature-256"]})


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"X-Signature-256": ""}, id="empty"),
        pytest.param({"X-Signature-256": "sha256=" + "0" * 64}, id="wrong"),
        pytest.param({"X-Signature-256": "sha256=not-hex"}, id="garbage"),
    ],
)
def test_missing_or_wrong_signature_is_rejected(headers):
    with pytest.raises(SignatureError):
        GenericSource(SECRET).verify(raw("order_shipped.json"), headers)


def test_body_signed_with_another_secret_is_rejected():
    body = raw("order_shipped.json")
    with pytest.raises(SignatureError):
        GenericSource(SECRET).verify(body, signed(body, secret="someone-else"))


def test_body_altered_after_signing_is_rejected():
    body = raw("order_shipped.json")
    headers = signed(body)
    with pytest.raises(SignatureError):
        GenericSource(SECRET).verify(body.replace(b"1299.00", b"1.00"), headers)


def test_signature_without_its_sha256_prefix_is_rejected():
    body = raw("order_shipped.json")
    with pytest.raises(SignatureError):
        GenericSource(SECRET).verify(body, {"X-Signature-256": sign_hmac(SECRET, body)})


def test_source_without_a_secret_verifies_nothing():
    body = raw("order_shipped.json")
    with pytest.raises(SignatureError):
        GenericSource("").verify(body, signed(body, secret=""))


# --- the event it makes ----------------------------------------------------------------------


def test_documented_shipped_event_parses_to_its_facts():
    event = parse(load("order_shipped.json"))

    assert event.source == "generic"
    assert event.dedupe_key == "generic:evt_01JD7F6XCV3N5R2B8Q4KZ9T1WM"
    assert event.external_event_id == "evt_01JD7F6XCV3N5R2B8Q4KZ9T1WM"
    assert event.topic == "shipped"
    assert event.kind is EventKind.SHIPPED
    assert event.order.external_id == "SO-2026-004750"
    assert event.order.number == "4750"
    assert event.order.total == Decimal("1299.00")
    assert event.order.currency == "INR"
    assert event.order.status_url == "https://shop.example.in/orders/SO-2026-004750?key=0f3c9a"
    assert event.order.tracking_url == "https://www.delhivery.com/track/package/1490211882791"
    assert event.order.tracking_number == "1490211882791"
    assert event.order.carrier == "Delhivery"
    assert event.customer.phone == "098123 45678"  # raw: normalised later
    assert event.customer.name == "Asha"
    assert event.customer.language == "hi"
    assert event.customer.country == "IN"
    assert event.notification_key == "1490211882791"
    assert event.payload == load("order_shipped.json")


def test_minimal_event_needs_only_ids_event_and_phone():
    event = parse(load("order_placed_minimal.json"))

    assert event.kind is EventKind.PLACED
    assert event.order.external_id == "SO-2026-004751"
    assert event.order.total is None
    assert event.order.tracking_number is None
    assert event.customer.phone == "+919812345678"
    assert event.customer.language is None
    assert event.notification_key == ""


@pytest.mark.parametrize("kind", list(EventKind))
def test_every_event_name_becomes_its_kind_and_topic(kind):
    data = load("order_placed_minimal.json") | {"event": kind.value}
    event = parse(data)
    assert (event.kind, event.topic) == (kind, kind.value)


@pytest.mark.parametrize(
    ("kind", "key"),
    [
        (EventKind.SHIPPED, "1490211882791"),
        (EventKind.OUT_FOR_DELIVERY, "1490211882791"),
        (EventKind.DELIVERED, "1490211882791"),
        (EventKind.PLACED, ""),
        (EventKind.CANCELLED, ""),
        (EventKind.REFUNDED, ""),
    ],
)
def test_tracking_number_tells_shipments_apart_only_for_shipment_events(kind, key):
    data = load("order_shipped.json") | {"event": kind.value}
    assert parse(data).notification_key == key


def test_shipment_event_without_tracking_number_has_no_notification_key():
    data = load("order_shipped.json")
    del data["order"]["tracking"]["number"]
    assert parse(data).notification_key == ""


def test_total_may_be_a_json_number_and_stays_exact():
    data = load("order_placed_minimal.json")
    data["order"]["total"] = 1299.5
    assert parse(data).order.total == Decimal("1299.5")


def test_optional_fields_may_be_null():
    data = load("order_shipped.json")
    data["order"].update(number=None, total=None, tracking=None, status_url=None)
    data["customer"].update(name=None, language=None, country=None)
    data["occurred_at"] = None
    event = parse(data)
    assert event.order.tracking_number is None
    assert event.notification_key == ""


# --- what it refuses -------------------------------------------------------------------------


def test_invalid_json_is_a_payload_error_on_the_body():
    assert "body" in problems(b'{"event_id": "evt_1", ')


def test_json_array_is_a_payload_error_on_the_body():
    assert problems([load("order_shipped.json")]) == {"body": ["Must be a JSON object."]}


def test_nan_is_not_json():
    assert "body" in problems(b'{"event_id": "e", "order": {"total": NaN}}')


def test_unknown_top_level_field_is_rejected():
    data = load("order_shipped.json") | {"shop": "rangrez"}
    assert problems(data) == {"shop": ["Unknown field."]}


def test_unknown_nested_field_is_rejected():
    data = load("order_shipped.json")
    data["customer"]["email"] = "asha@example.in"
    assert problems(data) == {"customer.email": ["Unknown field."]}


@pytest.mark.parametrize("event", ["dispatched", "SHIPPED", "", None, 3])
def test_event_names_outside_the_list_are_rejected(event):
    data = load("order_shipped.json") | {"event": event}
    assert "event" in problems(data)


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (("event_id",), "event_id"),
        (("event",), "event"),
        (("order",), "order"),
        (("customer",), "customer"),
        (("order", "id"), "order.id"),
        (("customer", "phone"), "customer.phone"),
    ],
)
def test_missing_required_field_is_named(path, field):
    data = load("order_shipped.json")
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    assert problems(data)[field] == ["Missing data for required field."]


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("event_id",), "", "event_id"),
        (("event_id",), "e" * 129, "event_id"),
        (("event_id",), 42, "event_id"),
        (("occurred_at",), "yesterday", "occurred_at"),
        (("order",), "SO-1", "order"),
        (("order", "id"), 4750, "order.id"),
        (("order", "id"), None, "order.id"),
        (("order", "total"), "twelve", "order.total"),
        (("order", "total"), "-1.00", "order.total"),
        (("order", "total"), True, "order.total"),
        (("order", "currency"), "inr", "order.currency"),
        (("order", "currency"), "RUPEE", "order.currency"),
        (("order", "status_url"), "javascript:alert(1)", "order.status_url"),
        (("order", "tracking"), ["1490211882791"], "order.tracking"),
        (("order", "tracking", "url"), "not a url", "order.tracking.url"),
        (("order", "tracking", "number"), 1490211882791, "order.tracking.number"),
        (("customer", "phone"), 919812345678, "customer.phone"),
        (("customer", "phone"), "", "customer.phone"),
        (("customer", "language"), "Hindi", "customer.language"),
        (("customer", "country"), "IND", "customer.country"),
        (("customer", "country"), "in", "customer.country"),
    ],
)
def test_wrong_type_or_format_is_named_by_its_path(path, value, field):
    data = load("order_shipped.json")
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    assert field in problems(data)


def test_every_problem_is_reported_at_once():
    data = load("order_shipped.json")
    data["order"]["currency"] = "inr"
    data["customer"]["country"] = "IND"
    del data["event_id"]
    assert set(problems(data)) == {"event_id", "order.currency", "customer.country"}
