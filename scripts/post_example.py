"""`make example`: post the README's example order event, signed with the local secret;
`make example-cod` (`--shopify-cod`): a Shopify cash-on-delivery order (orders/create)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_post import post_signed  # noqa: E402

EXAMPLE = {
    "event_id": f"example-{int(time.time())}",
    "event": "shipped",
    "order": {
        "id": "1042",
        "number": "#1042",
        "total": "1299.00",
        "currency": "INR",
        "tracking": {
            "url": "https://track.example.com/1042",
            "number": "DL123456789IN",
            "carrier": "Delhivery",
        },
    },
    "customer": {"phone": "+91 98123 45678", "name": "Asha", "language": "hi", "country": "IN"},
}


COD_ORDER = Path(__file__).resolve().parent.parent / "tests/payloads/shopify/orders_create_cod.json"


def main() -> None:
    if "--shopify-cod" in sys.argv:
        post_signed(
            "/webhooks/orders/shopify",
            COD_ORDER.read_bytes(),
            "X-Shopify-Hmac-Sha256",
            "SHOPIFY_WEBHOOK_SECRET",
            encoding="base64",
            prefix="",
            headers={
                "X-Shopify-Topic": "orders/create",
                "X-Shopify-Webhook-Id": f"example-cod-{int(time.time())}",
            },
        )
        return
    body = json.dumps(EXAMPLE).encode()
    post_signed("/webhooks/orders", body, "X-Signature-256", "ORDER_WEBHOOK_SECRET")


if __name__ == "__main__":
    main()
