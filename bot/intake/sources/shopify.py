"""Shopify order and fulfillment webhooks (`POST /webhooks/orders/shopify`) -> OrderEvent.

Signed with `SHOPIFY_WEBHOOK_SECRET`; the topic, delivery id and event id come from headers
(PROVIDERS.md §3.2), the order or fulfillment from the body (§3.3).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from bot.core.models import EventKind
from bot.core.signing import verify_hmac
from bot.intake.sources.base import (
    ComplianceRequest,
    ConsentUpdate,
    CustomerFacts,
    Ignored,
    OrderEvent,
    OrderFacts,
    PayloadError,
    SignatureError,
    Source,
    checkout_external_id,
)
from bot.intake.sources.schemas import (
    HeaderMap,
    ShopifyCheckoutSchema,
    ShopifyComplianceSchema,
    ShopifyConsentUpdateSchema,
    ShopifyFulfillmentEventSchema,
    ShopifyOrderSchema,
    first_present,
    header,
    load_json_object,
    optional_header,
    present,
    require_header,
    validate_payload,
)

SIGNATURE_HEADER = "X-Shopify-Hmac-Sha256"
TOPIC_HEADER = "X-Shopify-Topic"
WEBHOOK_ID_HEADER = "X-Shopify-Webhook-Id"  # the delivery's idempotency key (§3.2)
EVENT_ID_HEADER = "X-Shopify-Event-Id"  # shared by every subscription's copy of one event

#: Topics whose kind depends only on the topic; orders/create and fulfillments/update
#: look at the body too.
TOPIC_KINDS: dict[str, EventKind] = {
    "orders/create": EventKind.PLACED,
    "orders/paid": EventKind.CONFIRMED,  # orders/create does not imply payment (§3.1)
    "orders/cancelled": EventKind.CANCELLED,
    "orders/fulfilled": EventKind.SHIPPED,
    "fulfillments/create": EventKind.SHIPPED,
}
#: fulfillments/update: the carrier's progress; any other shipment_status tells nobody.
SHIPMENT_STATUS_KINDS: dict[str, EventKind] = {
    "out_for_delivery": EventKind.OUT_FOR_DELIVERY,
    "delivered": EventKind.DELIVERED,
}
#: Abandoned checkouts: no order status, but the cart reminder's start and end
#: (bot/intake/reminders.py).
CHECKOUT_TOPICS = frozenset({"checkouts/create", "checkouts/update"})
HANDLED_TOPICS = frozenset(
    {
        *TOPIC_KINDS,
        "fulfillments/update",
        *CHECKOUT_TOPICS,
        "customers/data_request",
        "customers/redact",
        "shop/redact",
        "customers_marketing_consent/update",
        "customers_whatsapp_marketing_consent/update",
        "customers_whats_app_marketing_consent/update",
        "customers/update",
    }
)
#: Resources of Shopify's order-related topics (§3.1): a signed delivery for one of these
#: that we do not handle is genuine and answered as ignored, not as an error.
ORDER_RESOURCES = frozenset(
    {
        "orders",
        "fulfillments",
        "fulfillment_orders",
        "fulfillment_events",
        "refunds",
        "returns",
        # customer and shop topics an app may also be subscribed to
        "customers",
        "customers_email_marketing_consent",
        "shop",
        "app",
    }
)
TOPIC_SHAPE = re.compile(r"[a-z_]+/[a-z_]+\Z")

#: Shopify's manual "Cash on Delivery (COD)" method, and the like from COD apps.
COD_GATEWAY = re.compile(r"cash on delivery|\bcod\b", re.IGNORECASE)
#: Fulfillments that never left the warehouse are not "the newest shipment".
DEAD_FULFILLMENT_STATUSES = frozenset({"cancelled", "error", "failure"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def marketing_consent(
    customer: dict[str, Any], buyer_accepts_marketing: bool | None
) -> bool | None:
    """The customer's marketing consent as the checkout recorded it, or None if unknown.

    The SMS consent object is the phone-channel answer; `buyer_accepts_marketing` is the
    general checkbox (a general opt-in is allowed by WhatsApp's policy, §1.12), used only
    when it says yes and the SMS object says nothing.
    """
    state = (customer.get("sms_marketing_consent") or {}).get("state")
    if state == "subscribed":
        return True
    if state == "unsubscribed":
        return False
    return True if buyer_accepts_marketing else None


def is_cash_on_delivery(gateway_names: list[str] | None) -> bool:
    return any(COD_GATEWAY.search(name) for name in gateway_names or [])


def newest_fulfillment(fulfillments: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    """The latest live fulfillment, by created_at then position; None when every one
    failed or was cancelled (their tracking is never sent)."""
    live = [
        (i, f)
        for i, f in enumerate(fulfillments or [])
        if f["status"] not in DEAD_FULFILLMENT_STATUSES
    ]
    if not live:
        return None
    _, newest = max(live, key=lambda pair: (pair[1]["created_at"] or _EPOCH, pair[0]))
    return newest


def tracking_facts(fulfillment: dict[str, Any] | None) -> dict[str, str | None]:
    """OrderFacts' tracking fields from one fulfillment (§3.3 `fulfillments[]`)."""
    if fulfillment is None:
        return {}
    return {
        "tracking_number": first_present(
            fulfillment["tracking_number"], *(fulfillment["tracking_numbers"] or [])
        ),
        "tracking_url": first_present(
            fulfillment["tracking_url"], *(fulfillment["tracking_urls"] or [])
        ),
        "carrier": first_present(fulfillment["tracking_company"]),
    }


def customer_facts(data: dict[str, Any]) -> CustomerFacts:
    """The customer of an order or checkout (the two resources share these fields)."""
    customer = data["customer"] or {}
    shipping = data["shipping_address"] or {}
    billing = data["billing_address"] or {}
    # Tried in this order until one is a usable number (README "Which number").
    numbers = present(
        customer.get("phone"), data["phone"], shipping.get("phone"), billing.get("phone")
    )
    return CustomerFacts(
        phone=numbers[0] if numbers else None,
        other_phones=tuple(numbers[1:]),
        name=first_present(
            customer.get("first_name"),
            shipping.get("first_name"),
            shipping.get("name"),
            billing.get("first_name"),
            billing.get("name"),
        ),
        language=first_present(data["customer_locale"]),
        country=first_present(shipping.get("country_code"), billing.get("country_code")),
        marketing_consent=marketing_consent(customer, data["buyer_accepts_marketing"]),
    )


#: Consent changes without an order (§9.5). The WhatsApp topic is new in API 2026-07;
#: its REST name is not in Shopify's reference yet, so both spellings are taken.
CONSENT_TOPICS = frozenset(
    {
        "customers_marketing_consent/update",
        "customers_whatsapp_marketing_consent/update",
        "customers_whats_app_marketing_consent/update",
        "customers/update",
    }
)


def consent_update(topic: str, webhook_id: str, payload: dict[str, Any]) -> ConsentUpdate | Ignored:
    """The consent a customer topic states: the WhatsApp consent object when it has one,
    else the SMS one (the phone channel's answer, as on orders); `subscribed` opts in,
    `unsubscribed` out, any other state says nothing (Ignored, as is a body without a
    phone or, on API 2025-01 and later, a customers/update, which carries no consent)."""
    data = validate_payload(ShopifyConsentUpdateSchema(), payload)
    channel, said = next(
        (
            (name, data[name])
            for name in (
                "whatsapp_marketing_consent",
                "whats_app_marketing_consent",
                "sms_marketing_consent",
            )
            if data[name]
        ),
        (None, None),
    )
    state = (said or {}).get("state")
    if state not in ("subscribed", "unsubscribed"):
        return Ignored(f"{topic}: no consent change stated ({state or 'none'})")
    phone = first_present(data["phone"])
    if phone is None:
        return Ignored(f"{topic}: consent for a customer without a phone number")
    evidence = {
        "topic": topic,
        "webhook_id": webhook_id,
        "channel": channel,
        "shop_customer_id": data["id"],
        **{key: said.get(key) for key in ("state", "opt_in_level", "consent_updated_at")},
        "consent_collected_from": said.get("consent_collected_from"),
    }
    return ConsentUpdate(
        source=ShopifySource.name,
        topic=topic,
        dedupe_key=f"shopify:{webhook_id}",
        phone=phone,
        opted_in=state == "subscribed",
        evidence=evidence,
    )


#: The privacy topics every Shopify app must subscribe to (§9.5): signed like the others.
COMPLIANCE_TOPICS = frozenset({"customers/data_request", "customers/redact", "shop/redact"})


def compliance_request(topic: str, webhook_id: str, payload: dict[str, Any]) -> ComplianceRequest:
    """`{shop_id, shop_domain, customer: {id, email, phone}, orders_to_redact |
    orders_requested, data_request: {id}}` as Shopify's reference shows it; a customers/*
    request without a customer is a PayloadError naming it."""
    data = validate_payload(ShopifyComplianceSchema(), payload)
    customer = data["customer"] or {}
    missing = {}
    if not data["shop_domain"]:
        missing["shop_domain"] = ["Missing data for required field."]  # shop/redact: whose?
    if topic != "shop/redact" and not customer:
        missing["customer"] = ["Missing data for required field."]
    if missing:
        raise PayloadError("payload is malformed", missing)
    orders = data["orders_to_redact"] or data["orders_requested"] or []
    request = data["data_request"] or {}
    return ComplianceRequest(
        source=ShopifySource.name,
        topic=topic,
        dedupe_key=f"shopify:{webhook_id}",
        shop_domain=data["shop_domain"],
        customer_id=customer.get("id"),
        phone=first_present(customer.get("phone")),
        orders=tuple(orders),
        request_id=request.get("id"),
    )


class ShopifySource(Source):
    name = "shopify"

    def verify(self, body: bytes, headers: HeaderMap) -> None:
        # base64, not hex, of the HMAC-SHA256 of the raw body (§3.2)
        if not verify_hmac(self.secret, body, header(headers, SIGNATURE_HEADER), encoding="base64"):
            raise SignatureError(f"{SIGNATURE_HEADER} does not sign this body")

    def parse(
        self, body: bytes, headers: HeaderMap
    ) -> OrderEvent | ComplianceRequest | ConsentUpdate | Ignored:
        topic = (header(headers, TOPIC_HEADER) or "").strip()
        if topic not in HANDLED_TOPICS:
            if TOPIC_SHAPE.match(topic) and topic.partition("/")[0] in ORDER_RESOURCES:
                return Ignored(f"topic not handled: {topic}")
            problem = "Missing header." if not topic else "Not a Shopify order topic."
            raise PayloadError(f"unusable {TOPIC_HEADER}: {topic!r}", {TOPIC_HEADER: [problem]})
        webhook_id = require_header(headers, WEBHOOK_ID_HEADER)
        event_id = optional_header(headers, EVENT_ID_HEADER)
        payload = load_json_object(body)
        if topic in COMPLIANCE_TOPICS:
            return compliance_request(topic, webhook_id, payload)
        if topic in CONSENT_TOPICS:
            return consent_update(topic, webhook_id, payload)
        if topic in CHECKOUT_TOPICS:
            checkout = self._from_checkout(payload)
            if checkout is None:
                return Ignored("open checkout without a phone")
            order, customer, kind, key = checkout
        elif topic.startswith("fulfillments/"):
            order, customer, kind, key = self._from_fulfillment(topic, payload)
        else:
            order, customer, kind, key = self._from_order(topic, payload)
        return OrderEvent(
            source=self.name,
            dedupe_key=f"shopify:{webhook_id}",
            topic=topic,
            kind=kind,
            order=order,
            customer=customer,
            external_event_id=event_id,
            event_key=f"shopify:{topic}:{event_id}" if event_id else None,
            notification_key=key,
            payload=payload,
            # A checkout's own token, or the token of the checkout an order came from.
            checkout_token=first_present(
                payload.get("token" if topic in CHECKOUT_TOPICS else "checkout_token")
            ),
            checkout_open=topic in CHECKOUT_TOPICS and not payload.get("completed_at"),
        )

    def _from_order(
        self, topic: str, payload: dict[str, Any]
    ) -> tuple[OrderFacts, CustomerFacts, EventKind | None, str]:
        data = validate_payload(ShopifyOrderSchema(), payload)
        kind = TOPIC_KINDS[topic]
        if (
            topic == "orders/create"
            and data["financial_status"] == "pending"
            and is_cash_on_delivery(data["payment_gateway_names"])
        ):
            kind = EventKind.COD_CONFIRMATION
        # orders/fulfilled announces the newest shipment; its id tells shipments apart.
        shipment = newest_fulfillment(data["fulfillments"]) if topic == "orders/fulfilled" else None
        order = OrderFacts(
            external_id=data["id"],
            number=data["name"],
            total=data["total_price"],
            currency=data["currency"],
            status=data["financial_status"],
            status_url=data["order_status_url"],
            **tracking_facts(shipment),
        )
        return order, customer_facts(data), kind, shipment["id"] if shipment else ""

    def _from_checkout(
        self, payload: dict[str, Any]
    ) -> tuple[OrderFacts, CustomerFacts, None, str] | None:
        """An abandoned checkout, as a pseudo-order "checkout:<token>" that no order status
        applies to (kind None); None when it is open but has no phone to remind."""
        data = validate_payload(ShopifyCheckoutSchema(), payload)
        facts = customer_facts(data)
        if facts.phone is None and not data["completed_at"]:
            return None
        order = OrderFacts(
            external_id=checkout_external_id(data["token"]),
            total=data["total_price"],
            currency=data["currency"],
            status="completed" if data["completed_at"] else "abandoned",
            status_url=data["abandoned_checkout_url"],
        )
        return order, facts, None, ""

    def _from_fulfillment(
        self, topic: str, payload: dict[str, Any]
    ) -> tuple[OrderFacts, CustomerFacts, EventKind | None, str]:
        data = validate_payload(ShopifyFulfillmentEventSchema(), payload)
        dead = data["status"] in DEAD_FULFILLMENT_STATUSES
        if dead:
            kind: EventKind | None = None  # a failed or cancelled shipment tells nobody
        elif topic == "fulfillments/create":
            kind = TOPIC_KINDS[topic]
        else:
            kind = SHIPMENT_STATUS_KINDS.get(data["shipment_status"] or "")
        destination = data["destination"] or {}
        tracking = {} if dead else tracking_facts(data)
        order = OrderFacts(external_id=data["order_id"], **tracking)
        customer = CustomerFacts(
            phone=first_present(destination.get("phone")),
            name=first_present(destination.get("first_name"), destination.get("name")),
            country=first_present(destination.get("country_code")),
        )
        return order, customer, kind, data["id"]
