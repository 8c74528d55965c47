"""Replay the genuine shop payloads (tests/payloads/{shopify,woocommerce}/real) against a
running Dakiya, correctly signed with the topic headers each shop sends, and tally the
answers per source and status.

    SHOPIFY_WEBHOOK_SECRET=... WOOCOMMERCE_WEBHOOK_SECRET=... \
        .venv/bin/python scripts/replay-payloads.py http://127.0.0.1:5000

Exits 1 if any genuine payload was refused (4xx) or answered 5xx.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import sys
import uuid
from collections import Counter
from pathlib import Path

import requests

REAL = Path(__file__).resolve().parent.parent / "tests" / "payloads"
SHOPIFY_TOPICS = {
    "order": [
        "orders/create",
        "orders/paid",
        "orders/fulfilled",
        "orders/cancelled",
        "orders/updated",
    ],
    "fulfillment": ["fulfillments/create", "fulfillments/update", "fulfillment_events/create"],
    "checkout": ["checkouts/create", "checkouts/update"],
}
WOO_TOPICS = ["order.created", "order.updated", "order.deleted"]


def sign(secret: str, raw: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()


def deliveries():
    """(source, file, topic, raw body, headers) for every payload and topic."""
    shopify, woo = os.environ["SHOPIFY_WEBHOOK_SECRET"], os.environ["WOOCOMMERCE_WEBHOOK_SECRET"]
    folder = REAL / "shopify" / "real"
    for name, source in sorted(json.loads((folder / "sources.json").read_text()).items()):
        raw = (folder / name).read_bytes()
        for topic in SHOPIFY_TOPICS[source["resource"]]:
            yield (
                "shopify",
                name,
                topic,
                raw,
                {
                    "X-Shopify-Hmac-Sha256": sign(shopify, raw),
                    "X-Shopify-Topic": topic,
                    "X-Shopify-Shop-Domain": "jsmith.myshopify.com",
                    "X-Shopify-API-Version": source["api_version"][:7],
                    "X-Shopify-Webhook-Id": str(uuid.uuid4()),
                    "X-Shopify-Event-Id": str(uuid.uuid4()),
                },
            )
    folder = REAL / "woocommerce" / "real"
    for name in sorted(json.loads((folder / "sources.json").read_text())):
        raw = (folder / name).read_bytes()
        for topic in WOO_TOPICS:
            resource, _, event = topic.partition(".")
            yield (
                "woocommerce",
                name,
                topic,
                raw,
                {
                    "X-WC-Webhook-Source": "https://example.com/",
                    "X-WC-Webhook-Topic": topic,
                    "X-WC-Webhook-Resource": resource,
                    "X-WC-Webhook-Event": event,
                    "X-WC-Webhook-Signature": sign(woo, raw),
                    "X-WC-Webhook-ID": "12",
                    "X-WC-Webhook-Delivery-ID": uuid.uuid4().hex,
                },
            )


def main(base_url: str) -> int:
    tally: Counter = Counter()
    bad = []
    files: dict[str, set] = {"shopify": set(), "woocommerce": set()}
    with requests.Session() as http:
        for source, name, topic, raw, headers in deliveries():
            files[source].add(name)
            response = http.post(
                f"{base_url}/webhooks/orders/{source}",
                data=raw,
                headers={**headers, "Content-Type": "application/json"},
                timeout=30,
            )
            body = response.json()
            answer = "ignored" if "ignored" in body else "spooled" if "spooled" in body else ""
            tally[(source, response.status_code, answer)] += 1
            if response.status_code >= 400:
                bad.append((source, name, topic, response.status_code, body))
    for source, names in files.items():
        print(f"{source}: {len(names)} payloads")
    for (source, status, answer), count in sorted(tally.items()):
        print(f"  {source} {status} {answer or 'stored/duplicate'}: {count}")
    for item in bad:
        print("REFUSED OR FAILED:", *item)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:5000"))
