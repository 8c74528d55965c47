"""The one HMAC helper every signed webhook goes through (Meta, Interakt, Shopify,
WooCommerce and the generic order webhook), always over the raw request body."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from typing import Literal

Encoding = Literal["hex", "base64"]


def sign_hmac(secret: str, body: bytes, encoding: Encoding = "hex") -> str:
    """HMAC-SHA256 of `body` keyed with `secret`, as lowercase hex or base64."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()


def verify_hmac(
    secret: str | Sequence[str],
    body: bytes,
    signature: str | None,
    *,
    encoding: Encoding = "hex",
    prefix: str = "",
) -> bool:
    """True when `signature` (with its optional `prefix`, e.g. "sha256=") signs `body`
    with `secret`, or with any of several (the current one and, while a rotation lasts,
    the previous one: `Settings.secrets_for`).

    Compared in constant time; an empty secret or missing signature never verifies.
    """
    if not signature or not signature.startswith(prefix):
        return False
    given = signature[len(prefix) :].strip().encode()
    secrets = (secret,) if isinstance(secret, str) else tuple(secret)
    matches = [
        hmac.compare_digest(sign_hmac(key, body, encoding).encode(), given)
        for key in secrets
        if key
    ]
    return any(matches)
