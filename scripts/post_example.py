"""`make example`: post the README's example order event, signed with the local secret."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import requests
from dotenv import load_dotenv

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bot.core.signing import sign_hmac  # noqa: E402

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
    load_dotenv(ROOT / ".env")
    secret = os.environ["ORDER_WEBHOOK_SECRET"]
    body = json.dumps(EXAMPLE).encode()
    url = f"http://127.0.0.1:{os.environ.get('PORT', '5000')}/webhooks/orders"
    response = requests.post(
        url,
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Signature-256": "sha256=" + sign_hmac(secret, body),
        },
        timeout=10,
    )
    print(response.status_code, response.text.strip())


if __name__ == "__main__":
    main()
