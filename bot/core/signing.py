"""The one HMAC helper every signed webhook goes through (Meta, Interakt, Shopify,
WooCommerce and the generic order webhook), always over the raw request body."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Literal

Encoding = Literal["hex", "base64"]


def sign_hmac(secret: str, body: bytes, encoding: Encoding = "hex") -> str:
    """HMAC-SHA256 of `body` keyed with `secret`, as lowercase hex or base64."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()


def verify_hmac(
    secret: str,
    body: bytes,
    signature: str | None,
    *,
    encoding: Encoding = "hex",
    prefix: str = "",
) -> bool:
    """True when `signature` (with its optional `prefix`, e.g. "sha256=") signs `body`.

    Compared in constant time; an empty secret or missing signature never verifies.
    """
    if not secret or not signature or not signature.startswith(prefix):
        return False
    expected = sign_hmac(secret, body, encoding)
    return hmac.compare_digest(expected.encode(), signature[len(prefix) :].strip().encode())
