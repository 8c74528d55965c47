"""Properties of every order source under hostile input (issue 8, item 5).

- any body at all, JSON or not, is an OrderEvent, an Ignored or a PayloadError (a 400):
  never another exception (a 500);
- a valid generated event parses to exactly the facts it carries;
- dedupe keys are a function of the delivery: the same delivery always gets the same
  key, different events never share one.
"""

from __future__ import annotations

import json
from decimal import Decimal

from babel.numbers import list_currencies
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.models import EventKind
from bot.intake.sources.base import ComplianceRequest, Ignored, OrderEvent, PayloadError
from bot.intake.sources.generic import SHIPMENT_KINDS, GenericSource
from bot.intake.sources.shopify import HANDLED_TOPICS as SHOPIFY_TOPICS
from bot.intake.sources.shopify import ShopifySource
from bot.intake.sources.woocommerce import WooCommerceSource

# Text a database can store (no NUL, no lone surrogate): the rest is refused on purpose.
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=20,
)

SHOPIFY_HEADERS = st.fixed_dictionaries(
    {
        "X-Shopify-Topic": st.sampled_from(sorted(SHOPIFY_TOPICS)) | TEXT,
        "X-Shopify-Webhook-Id": st.uuids().map(str),
    }
)
WOO_HEADERS = st.fixed_dictionaries(
    {
        "X-WC-Webhook-Topic": st.sampled_from(["order.created", "order.updated"]) | TEXT,
        "X-WC-Webhook-Delivery-ID": st.text("0123456789abcdef", min_size=1, max_size=40),
    }
)
SOURCES = st.one_of(
    st.tuples(st.just(GenericSource("s")), st.just({})),
    st.tuples(st.just(ShopifySource("s")), SHOPIFY_HEADERS),
    st.tuples(st.just(WooCommerceSource("s")), WOO_HEADERS),
)


def parse_or_refuse(
    source, body: bytes, headers: dict
) -> OrderEvent | Ignored | ComplianceRequest | None:
    """What the webhook does: a PayloadError is a 400 (None here); anything else raised
    would be a 500 and fails the test."""
    try:
        parsed = source.parse(body, headers)
    except PayloadError as exc:
        assert exc.fields, "a 400 names the field that was wrong"
        return None
    assert isinstance(parsed, OrderEvent | Ignored | ComplianceRequest)
    return parsed


@settings(max_examples=300)
@given(source_and_headers=SOURCES, body=st.binary(max_size=200))
def test_any_bytes_are_an_event_or_a_payload_error(source_and_headers, body):
    source, headers = source_and_headers
    parse_or_refuse(source, body, headers)


@settings(max_examples=300)
@given(source_and_headers=SOURCES, value=JSON)
def test_any_json_is_an_event_or_a_payload_error(source_and_headers, value):
    source, headers = source_and_headers
    parse_or_refuse(source, json.dumps(value).encode(), headers)


# Documents shaped like each source's own, every value arbitrary JSON: the deep paths.
GENERIC_SHAPED = st.fixed_dictionaries(
    {"event_id": JSON, "event": JSON},
    optional={
        "occurred_at": JSON,
        "order": st.fixed_dictionaries(
            {"id": JSON},
            optional={k: JSON for k in ("number", "total", "currency", "status_url", "tracking")},
        )
        | JSON,
        "customer": st.fixed_dictionaries(
            {"phone": JSON},
            optional={k: JSON for k in ("name", "language", "country", "marketing_consent")},
        )
        | JSON,
    },
)
ADDRESS = st.fixed_dictionaries({}, optional={k: JSON for k in ("phone", "first_name", "name")})
FULFILLMENT = st.fixed_dictionaries(
    {"id": JSON},
    optional={
        "order_id": JSON,
        "created_at": JSON,
        "status": st.sampled_from(["success", "cancelled"]) | JSON,
        "shipment_status": st.sampled_from(["out_for_delivery", "delivered"]) | JSON,
        "tracking_number": JSON,
        "tracking_numbers": JSON,
        "tracking_urls": JSON,
        "destination": ADDRESS | JSON,
    },
)
SHOPIFY_SHAPED = st.fixed_dictionaries(
    {"id": JSON},
    optional={
        "token": JSON,
        "completed_at": JSON,
        "checkout_token": JSON,
        "financial_status": st.just("pending") | JSON,
        "payment_gateway_names": st.just(["Cash on Delivery (COD)"]) | JSON,
        "customer": st.fixed_dictionaries(
            {}, optional={"phone": JSON, "sms_marketing_consent": JSON}
        )
        | JSON,
        "shipping_address": ADDRESS | JSON,
        "billing_address": ADDRESS | JSON,
        "fulfillments": st.lists(FULFILLMENT, max_size=3) | JSON,
        "buyer_accepts_marketing": JSON,
        "order_id": JSON,
        "destination": ADDRESS | JSON,
        "shipment_status": JSON,
    },
)
WOO_SHAPED = st.fixed_dictionaries(
    {"id": JSON, "status": st.sampled_from(["processing", "completed", "wc-pending"]) | JSON},
    optional={
        "number": JSON,
        "total": JSON,
        "payment_method": st.just("cod") | JSON,
        "billing": ADDRESS | JSON,
        "meta_data": st.lists(
            st.fixed_dictionaries(
                {"key": st.just("_wc_shipment_tracking_items") | JSON, "value": JSON}
            ),
            max_size=3,
        )
        | JSON,
    },
)


@settings(max_examples=300)
@given(
    case=st.one_of(
        st.tuples(st.just(GenericSource("s")), st.just({}), GENERIC_SHAPED),
        st.tuples(st.just(ShopifySource("s")), SHOPIFY_HEADERS, SHOPIFY_SHAPED),
        st.tuples(st.just(WooCommerceSource("s")), WOO_HEADERS, WOO_SHAPED),
    )
)
def test_documents_shaped_like_the_real_ones_are_an_event_or_a_payload_error(case):
    source, headers, document = case
    parse_or_refuse(source, json.dumps(document).encode(), headers)


# --- valid generic events ------------------------------------------------------------

SAFE_TEXT = TEXT.filter(lambda s: s.strip() == s and s)
URLS = st.builds(
    "https://{}.example.com/{}".format,
    st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=10),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789", max_size=10),
)
VALID_GENERIC = st.fixed_dictionaries(
    {
        "event_id": SAFE_TEXT.filter(lambda s: len(s) <= 128),
        "event": st.sampled_from([k.value for k in EventKind]),
        "order": st.fixed_dictionaries(
            {"id": SAFE_TEXT.filter(lambda s: len(s) <= 64)},
            optional={
                "number": st.none() | SAFE_TEXT.filter(lambda s: len(s) <= 64),
                "total": st.none() | st.decimals(min_value=0, max_value=10**9, places=2).map(str),
                "currency": st.none() | st.sampled_from(sorted(list_currencies())),
                "status_url": st.none() | URLS,
                "tracking": st.none()
                | st.fixed_dictionaries(
                    {},
                    optional={
                        "url": st.none() | URLS,
                        "number": st.none() | SAFE_TEXT.filter(lambda s: len(s) <= 128),
                        "carrier": st.none() | SAFE_TEXT.filter(lambda s: len(s) <= 128),
                    },
                ),
            },
        ),
        "customer": st.fixed_dictionaries(
            {"phone": SAFE_TEXT.filter(lambda s: len(s) <= 64)},
            optional={
                "name": st.none() | SAFE_TEXT.filter(lambda s: len(s) <= 200),
                "language": st.none() | st.sampled_from(["hi", "en", "en-IN", "ta", "mr-IN"]),
                "country": st.none() | st.from_regex(r"[A-Z]{2}", fullmatch=True),
                "marketing_consent": st.none() | st.booleans(),
            },
        ),
    }
)


@settings(max_examples=200)
@given(event=VALID_GENERIC)
def test_a_valid_generic_event_parses_to_exactly_its_facts(event):
    parsed = GenericSource("s").parse(json.dumps(event).encode(), {})
    order, customer = event["order"], event["customer"]
    tracking = order.get("tracking") or {}
    kind = EventKind(event["event"])
    assert (parsed.source, parsed.kind, parsed.topic) == ("generic", kind, event["event"])
    assert parsed.dedupe_key == f"generic:{event['event_id']}"
    assert parsed.external_event_id == event["event_id"]
    assert parsed.order.external_id == order["id"]
    assert parsed.order.number == order.get("number")
    total = order.get("total")
    assert parsed.order.total == (Decimal(total) if total is not None else None)
    assert parsed.order.currency == order.get("currency")
    assert parsed.order.status_url == order.get("status_url")
    assert parsed.order.tracking_url == tracking.get("url")
    assert parsed.order.tracking_number == tracking.get("number")
    assert parsed.order.carrier == tracking.get("carrier")
    assert parsed.customer.phone == customer["phone"]
    assert parsed.customer.name == customer.get("name")
    assert parsed.customer.language == customer.get("language")
    assert parsed.customer.country == customer.get("country")
    assert parsed.customer.marketing_consent == customer.get("marketing_consent")
    expected_key = (tracking.get("number") or "") if kind in SHIPMENT_KINDS else ""
    assert parsed.notification_key == expected_key
    assert parsed.payload == event


@given(event=VALID_GENERIC, indent=st.none() | st.integers(0, 4), sort_keys=st.booleans())
def test_a_generic_dedupe_key_depends_on_the_event_not_on_how_it_is_written(
    event, indent, sort_keys
):
    source = GenericSource("s")
    first = source.parse(json.dumps(event).encode(), {})
    again = source.parse(json.dumps(event, indent=indent, sort_keys=sort_keys).encode(), {})
    assert again.dedupe_key == first.dedupe_key
    other = source.parse(json.dumps({**event, "event_id": event["event_id"] + "x"}).encode(), {})
    assert other.dedupe_key != first.dedupe_key


@given(
    order_id=st.integers(1, 2**63) | SAFE_TEXT.filter(lambda s: len(s) <= 64),
    webhook_id=st.uuids().map(str),
    topic=st.sampled_from(["orders/create", "orders/paid", "orders/cancelled"]),
)
def test_a_shopify_dedupe_key_is_the_delivery_id_and_the_order_id_stays_exact(
    order_id, webhook_id, topic
):
    headers = {"X-Shopify-Topic": topic, "X-Shopify-Webhook-Id": webhook_id}
    body = json.dumps({"id": order_id, "name": "#1001"}).encode()
    first, again = (ShopifySource("s").parse(body, headers) for _ in range(2))
    assert first.dedupe_key == again.dedupe_key == f"shopify:{webhook_id}"
    assert first.order.external_id == str(order_id).strip()


@given(
    delivery=st.text("0123456789abcdef", min_size=1, max_size=40),
    order_id=st.integers(1, 10**12),
    statuses=st.lists(st.sampled_from(["processing", "completed", "cancelled"]), min_size=2),
)
def test_a_woocommerce_dedupe_key_tells_apart_different_bodies_of_one_delivery_id(
    delivery, order_id, statuses
):
    # WooCommerce never redelivers and reuses delivery ids: the body is part of the key.
    headers = {"X-WC-Webhook-Topic": "order.updated", "X-WC-Webhook-Delivery-ID": delivery}
    keys = {}
    for status in statuses:
        body = json.dumps({"id": order_id, "status": status}).encode()
        parsed = WooCommerceSource("s").parse(body, headers)
        assert parsed.dedupe_key == WooCommerceSource("s").parse(body, headers).dedupe_key
        assert parsed.order.external_id == str(order_id)
        keys[status] = parsed.dedupe_key
    assert len(set(keys.values())) == len(keys)
