"""`make example`: post the README's example order event, signed with the local secret."""

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


def main() -> None:
    body = json.dumps(EXAMPLE).encode()
    post_signed("/webhooks/orders", body, "X-Signature-256", "ORDER_WEBHOOK_SECRET")


if __name__ == "__main__":
    main()
