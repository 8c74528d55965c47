"""The generic order webhook (`POST /webhooks/orders`) for any shop that is not Shopify or
WooCommerce: our own documented event schema, signed with `ORDER_WEBHOOK_SECRET`.

Signature: header `X-Signature-256: sha256=<hex>`, the lowercase hex HMAC-SHA256 of the raw
request body keyed with the shared secret (the same scheme as Meta's webhooks).

Body (a JSON object; unknown fields are rejected at every level, optional fields may be null):

    {
      "event_id":    string, 1..128 chars, required. Unique per event: a resend with the
                     same event_id is a duplicate and changes nothing.
      "event":       required, one of "placed", "confirmed", "cod_confirmation", "shipped",
                     "out_for_delivery", "delivered", "cancelled", "refunded".
      "occurred_at": ISO-8601 date-time, optional.
      "order": {                                   required
        "id":         string, 1..64 chars, required: your order id.
        "number":     string, up to 64 chars: the number the customer knows, e.g. "#1042".
        "total":      decimal string or number, >= 0 and below 10^12, e.g. "1299.00".
        "currency":   an upper-case ISO 4217 code, e.g. "INR" ("RUPEE" is refused).
        "status_url": http(s) URL of the customer's order page.
        "tracking": { "url": http(s) URL, "number": string up to 128 chars,
                      "carrier": string (cut to 128 chars) }
      },
      "customer": {                                required
        "phone":    string, required: as you have it; "+91 98123 45678" and "09812345678"
                    are both fine when "country" is given.
        "name":     string; a longer name than 200 chars is cut to 200, not refused.
        "language": language tag up to 16 chars, e.g. "hi" or "en-IN" (stored as BCP 47).
        "country":  2-letter upper-case ISO 3166 code, e.g. "IN": the default region for
                    phone numbers without a country code.
        "marketing_consent": true / false / null: what the customer agreed to at your
                    checkout (recorded in the consent ledger; null says nothing).
      }
    }

A second shipment of one order is told apart by `order.tracking.number`: for "shipped",
"out_for_delivery" and "delivered" each tracking number is notified once.
"""

from __future__ import annotations

from bot.core.models import EventKind
from bot.core.signing import verify_hmac
from bot.intake.sources.base import (
    CustomerFacts,
    Ignored,
    OrderEvent,
    OrderFacts,
    SignatureError,
    Source,
)
from bot.intake.sources.schemas import (
    GenericEventSchema,
    HeaderMap,
    header,
    load_json_object,
    validate_payload,
)

SIGNATURE_HEADER = "X-Signature-256"

#: Kinds whose notification is per shipment rather than per order.
SHIPMENT_KINDS = frozenset({EventKind.SHIPPED, EventKind.OUT_FOR_DELIVERY, EventKind.DELIVERED})


class GenericSource(Source):
    name = "generic"

    def verify(self, body: bytes, headers: HeaderMap) -> None:
        signature = header(headers, SIGNATURE_HEADER)
        if not verify_hmac(self.secret, body, signature, encoding="hex", prefix="sha256="):
            raise SignatureError(f"{SIGNATURE_HEADER} does not sign this body")

    def parse(self, body: bytes, headers: HeaderMap) -> OrderEvent | Ignored:
        payload = load_json_object(body)
        event = validate_payload(GenericEventSchema(), payload)
        order, customer, kind = event["order"], event["customer"], event["event"]
        tracking = order["tracking"] or {}
        return OrderEvent(
            source=self.name,
            dedupe_key=f"generic:{event['event_id']}",
            topic=kind.value,
            kind=kind,
            order=OrderFacts(
                external_id=order["id"],
                number=order["number"],
                total=order["total"],
                currency=order["currency"],
                status_url=order["status_url"],
                tracking_url=tracking.get("url"),
                tracking_number=tracking.get("number"),
                carrier=tracking.get("carrier"),
            ),
            customer=CustomerFacts(
                phone=customer["phone"],
                name=customer["name"],
                language=customer["language"],
                country=customer["country"],
                marketing_consent=customer["marketing_consent"],
            ),
            external_event_id=event["event_id"],
            notification_key=(tracking.get("number") or "") if kind in SHIPMENT_KINDS else "",
            payload=payload,
        )
