"""How a shop's API answered a write-back, in the write-back job's words: try again
later, or give up (the reason recorded). Shared by the Shopify and WooCommerce clients."""

from __future__ import annotations

import requests


class Retry(Exception):
    """Not now (network, 5xx, 429, throttled): the write-back is tried again later."""


class Refused(Exception):
    """The shop will not do it (4xx, userErrors): recorded, not retried."""


def classify(response: requests.Response, what: str) -> None:
    """Raise Retry or Refused for an answer that is not a success."""
    if response.status_code == 429 or response.status_code >= 500:
        raise Retry(f"{what}: HTTP {response.status_code}")
    if response.status_code >= 400:
        raise Refused(f"{what}: HTTP {response.status_code} {response.text[:200]}")
