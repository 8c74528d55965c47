"""Post a signed webhook body to the local Dakiya (`make example`, `make say`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import requests
from dotenv import load_dotenv

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bot.core.signing import sign_hmac  # noqa: E402


def post_signed(
    path: str,
    body: bytes,
    header: str,
    secret_name: str,
    *,
    encoding: str = "hex",
    prefix: str = "sha256=",
    headers: dict | None = None,
) -> None:
    """POST `body` to `path` on 127.0.0.1:$PORT with `header: <prefix><HMAC>` keyed by
    the .env's `secret_name` (hex, or base64 as Shopify signs); prints the answer."""
    load_dotenv(ROOT / ".env")
    secret = os.environ.get(secret_name)
    if not secret:
        sys.exit(f"{secret_name} is not set in .env (make run writes one on first start)")
    response = requests.post(
        f"http://127.0.0.1:{os.environ.get('PORT', '5000')}{path}",
        data=body,
        headers={
            "Content-Type": "application/json",
            header: prefix + sign_hmac(secret, body, encoding),
            **(headers or {}),
        },
        timeout=10,
    )
    print(response.status_code, response.text.strip())
