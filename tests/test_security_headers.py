"""Browser safety headers: nosniff and no referrer on everything; on HTML a strict CSP
that forbids framing, and the legal pages' inline style allowed by a per-response nonce."""

from __future__ import annotations

import re

import pytest


@pytest.mark.parametrize("path", ["/healthz", "/openapi.json", "/no/such/page"])
def test_every_response_is_nosniff_and_sends_no_referrer(client, path):
    response = client.get(path)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "Content-Security-Policy" not in response.headers  # JSON is not rendered


def test_html_cannot_be_framed_and_loads_only_its_own_resources(client):
    response = client.get("/legal/privacy")
    assert response.mimetype == "text/html"
    csp = response.headers["Content-Security-Policy"]
    for directive in (
        "default-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ):
        assert directive in csp
    assert "unsafe-inline" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_the_legal_pages_inline_style_carries_this_responses_nonce(client):
    first, second = client.get("/legal/privacy"), client.get("/legal/terms")
    nonces = []
    for response in (first, second):
        (nonce,) = re.findall(
            r"style-src 'self' 'nonce-([^']+)'", response.headers["Content-Security-Policy"]
        )
        assert f'<style nonce="{nonce}">' in response.get_data(as_text=True)
        nonces.append(nonce)
    assert nonces[0] != nonces[1]  # fresh per response
