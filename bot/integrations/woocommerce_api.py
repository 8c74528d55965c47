"""WooCommerce's REST API (v3), as much of it as Dakiya reads: orders modified after a
time, oldest first, page by page (PROVIDERS.md §4; WooCommerce REST API docs, "List all
orders": `modified_after`, `per_page` up to 100, `page`, `orderby`, `order`, and the
`X-WP-TotalPages` header). Authenticated with the consumer key and secret as HTTP Basic
auth, which WooCommerce accepts over HTTPS."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import requests

from bot.integrations.shop_errors import Retry, classify

PER_PAGE = 100
MAX_PAGES = 50  # 5,000 orders a pull at most; the rest waits for the next one
TIMEOUT = (5, 30)


class WooCommerceError(Exception):
    """The store did not answer with orders (down, a wrong key, not WooCommerce)."""


def modified_orders(
    base_url: str, key: str, secret: str, after: datetime, session: requests.Session | None = None
) -> Iterator[dict]:
    """Every order modified after `after` (naive UTC), oldest first."""
    http = session or requests.Session()
    url = base_url.rstrip("/") + "/wp-json/wc/v3/orders"
    for page in range(1, MAX_PAGES + 1):
        params = {
            "modified_after": after.replace(microsecond=0).isoformat(),
            "dates_are_gmt": "true",
            "per_page": PER_PAGE,
            "page": page,
            "orderby": "modified",
            "order": "asc",
        }
        try:
            response = http.get(url, params=params, auth=(key, secret), timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise WooCommerceError(f"GET {url}: {exc}") from exc
        if response.status_code != 200:
            raise WooCommerceError(f"GET {url}: HTTP {response.status_code} {response.text[:200]}")
        try:
            orders = response.json()
        except ValueError as exc:
            raise WooCommerceError(f"GET {url}: not JSON") from exc
        if not isinstance(orders, list):
            raise WooCommerceError(f"GET {url}: expected a list of orders")
        yield from (order for order in orders if isinstance(order, dict))
        pages = response.headers.get("X-WP-TotalPages", "1")
        if not pages.isdigit() or page >= int(pages) or not orders:
            return


def write_order(
    base_url: str,
    key: str,
    secret: str,
    order_id: str,
    status: str,
    note: str,
    session: requests.Session | None = None,
) -> None:
    """The new status (`PUT /orders/<id>`, the same however often it is retried), then a
    private order note (`POST /orders/<id>/notes`, last: a retry repeats it only if its
    answer was lost); Retry or Refused (bot/integrations/shop_errors.py) when it fails."""
    http = session or requests.Session()
    url = f"{base_url.rstrip('/')}/wp-json/wc/v3/orders/{order_id}"
    steps = [("PUT", "", {"status": status})] if status else []  # empty: a note only
    steps.append(("POST", "/notes", {"note": note, "customer_note": False}))
    for method, path, body in steps:
        try:
            response = http.request(
                method, url + path, json=body, auth=(key, secret), timeout=TIMEOUT
            )
        except requests.RequestException as exc:
            raise Retry(f"{method} {url + path}: {exc}") from exc
        classify(response, f"{method} {url + path}")
