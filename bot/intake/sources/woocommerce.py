"""WooCommerce order webhooks (`POST /webhooks/orders/woocommerce`) -> OrderEvent.

Signed with `WOOCOMMERCE_WEBHOOK_SECRET`, except the unsigned ping WooCommerce sends when a
webhook is created (PROVIDERS.md §4). The body is the REST v3 order resource.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from bot.core.models import EventKind, Order
from bot.core.signing import verify_hmac
from bot.intake.sources.base import (
    CustomerFacts,
    Ignored,
    OrderEvent,
    OrderFacts,
    PayloadError,
    SignatureError,
    Source,
)
from bot.intake.sources.schemas import (
    HeaderMap,
    WooOrderSchema,
    first_present,
    header,
    load_json_object,
    present,
    require_header,
    validate_payload,
)

SIGNATURE_HEADER = "X-WC-Webhook-Signature"
TOPIC_HEADER = "X-WC-Webhook-Topic"
DELIVERY_ID_HEADER = "X-WC-Webhook-Delivery-ID"

#: deliver_ping() posts exactly this, form-encoded, with no X-WC-* headers (§4).
PING_BODY = re.compile(rb"webhook_id=[0-9]{1,20}\Z")

HANDLED_TOPICS = frozenset({"order.created", "order.updated"})
#: Core topics are <resource>.<event>, plus action.<hook> for custom ones (§4).
CORE_RESOURCES = frozenset({"order", "product", "customer", "coupon"})
CORE_EVENTS = frozenset({"created", "updated", "deleted", "restored"})

#: order.created: what the customer hears about a new order.
CREATED_KINDS: dict[str, EventKind] = {
    "pending": EventKind.PLACED,
    "on-hold": EventKind.PLACED,  # awaiting payment confirmation, e.g. a bank transfer
    "processing": EventKind.CONFIRMED,  # paid, stock reduced
}
#: order.updated fires on every save, so this maps the status the order is now in; the
#: outbox sends each kind once per order. Core WooCommerce has no "shipped" status: shops
#: mark an order "completed" when they ship it. The other three are the statuses that
#: shipment-tracking plugins register.
UPDATED_KINDS: dict[str, EventKind] = {
    "processing": EventKind.CONFIRMED,
    "completed": EventKind.SHIPPED,
    "shipped": EventKind.SHIPPED,
    "out-for-delivery": EventKind.OUT_FOR_DELIVERY,
    "delivered": EventKind.DELIVERED,
    "cancelled": EventKind.CANCELLED,
    "refunded": EventKind.REFUNDED,
}
COD_PAYMENT_METHOD = "cod"  # WooCommerce core's Cash on delivery gateway
#: Where the WooCommerce Shipment Tracking plugin keeps its list of shipments.
TRACKING_META_KEY = "_wc_shipment_tracking_items"


def is_ping(body: bytes, headers: HeaderMap) -> bool:
    return PING_BODY.match(body) is not None and not any(
        key.lower().startswith("x-wc-") for key, _ in headers.items()
    )


def is_core_topic(topic: str) -> bool:
    resource, _, event = topic.partition(".")
    if resource == "action":
        return bool(event)
    return resource in CORE_RESOURCES and event in CORE_EVENTS


def kind_for(topic: str, status: str, payment_method: str | None) -> EventKind | None:
    status = status.removeprefix("wc-")
    kind = (CREATED_KINDS if topic == "order.created" else UPDATED_KINDS).get(status)
    # WooCommerce builds the body at delivery time, so the update that follows a COD
    # order's creation usually says `processing` too: it must map to the same
    # COD confirmation, which the outbox then sends only once per order.
    cod_kinds = (EventKind.PLACED, EventKind.CONFIRMED)
    if kind in cod_kinds and payment_method == COD_PAYMENT_METHOD:
        return EventKind.COD_CONFIRMATION
    return kind


def tracking_from_meta(meta_data: list[dict[str, Any]] | None) -> dict[str, str | None]:
    """Tracking of the newest shipment the Shipment Tracking plugin recorded, if any.

    Plugin data is read leniently: a shape we do not know (or a tracking number longer
    than any carrier's) means no tracking, not a lost order event (WooCommerce never
    redelivers); a long carrier name is cut to fit.
    """
    for entry in meta_data or []:
        if entry["key"] != TRACKING_META_KEY or not isinstance(entry["value"], list):
            continue
        items = [
            i
            for i in entry["value"]
            if isinstance(i, dict)
            and 0 < len(_text(i, "tracking_number") or "") <= Order.tracking_number.max_length
        ]
        if items:
            newest = items[-1]  # the plugin appends each shipment
            carrier = _text(newest, "custom_tracking_provider") or _text(
                newest, "tracking_provider"
            )
            return {
                "tracking_number": _text(newest, "tracking_number"),
                "tracking_url": _text(newest, "custom_tracking_link"),
                "carrier": carrier[: Order.carrier.max_length] if carrier else None,
            }
    return {}


def _text(item: dict[str, Any], key: str) -> str | None:
    value = item.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value).strip() or None


class WooCommerceSource(Source):
    name = "woocommerce"

    def verify(self, body: bytes, headers: HeaderMap) -> None:
        signature = header(headers, SIGNATURE_HEADER)
        if signature is None and is_ping(body, headers):
            return  # the creation ping is never signed; it carries nothing but an id
        # base64 of the raw HMAC-SHA256 of the exact body (§4)
        if not verify_hmac(self.secret, body, signature, encoding="base64"):
            raise SignatureError(f"{SIGNATURE_HEADER} does not sign this body")

    def parse(self, body: bytes, headers: HeaderMap) -> OrderEvent | Ignored:
        if is_ping(body, headers):
            return Ignored("ping")
        topic = (header(headers, TOPIC_HEADER) or "").strip()
        if topic not in HANDLED_TOPICS:
            if is_core_topic(topic):
                return Ignored(f"topic not handled: {topic}")
            problem = "Missing header." if not topic else "Not a WooCommerce topic."
            raise PayloadError(f"unusable {TOPIC_HEADER}: {topic!r}", {TOPIC_HEADER: [problem]})
        delivery_id = require_header(headers, DELIVERY_ID_HEADER)
        payload = load_json_object(body)
        # WooCommerce never redelivers, and its delivery id is a hash of webhook id and
        # time; the body hash keeps two different events from ever sharing a key (§7.2).
        body_hash = hashlib.sha256(body).hexdigest()[:16]
        return order_event(payload, topic, f"woocommerce:{delivery_id}:{body_hash}", delivery_id)


def order_event(
    payload: dict[str, Any], topic: str, dedupe_key: str, delivery_id: str | None
) -> OrderEvent:
    """The OrderEvent of one REST v3 order resource, from a webhook or from the catch-up
    pull (bot/intake/woo_catch_up.py), read the same way."""
    data = validate_payload(WooOrderSchema(), payload)
    billing = data["billing"] or {}
    shipping = data["shipping"] or {}
    return OrderEvent(
        source=WooCommerceSource.name,
        dedupe_key=dedupe_key,
        topic=topic,
        kind=kind_for(topic, data["status"], data["payment_method"]),
        order=OrderFacts(
            external_id=data["id"],
            number=data["number"],
            total=data["total"],
            currency=data["currency"],
            status=data["status"],
            **tracking_from_meta(data["meta_data"]),
        ),
        customer=CustomerFacts(
            # Billing first (WooCommerce asks for it), then shipping, until one is usable.
            phone=first_present(billing.get("phone"), shipping.get("phone")),
            other_phones=tuple(present(billing.get("phone"), shipping.get("phone"))[1:]),
            name=first_present(billing.get("first_name")),
            country=first_present(billing.get("country")),
        ),
        external_event_id=delivery_id,
        payload=payload,
    )
