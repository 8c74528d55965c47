"""Browser safety headers on every response, a strict Content-Security-Policy on HTML, and
`Cache-Control: no-store` on every admin answer (API, CSV, dashboard): they hold personal
data that no browser cache or proxy should keep.

Pages with an inline `<style>` (the legal pages) mark it with `nonce="{{ csp_nonce() }}"`;
the nonce is made per response and only a page that asked for one gets it in its policy,
so no page ever needs `'unsafe-inline'`.
"""

from __future__ import annotations

import secrets

from flask import Flask, Response, g, request

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
#: The admin's own scripts and styles hold no data: browsers may keep those.
CACHEABLE_ADMIN_ENDPOINTS = frozenset({"admin.static"})


def csp_nonce() -> str:
    """This response's CSP nonce (made on first use), for inline `<style>`/`<script>`."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def content_security_policy(nonce: str | None) -> str:
    if not nonce:
        return CONTENT_SECURITY_POLICY
    allowed = f"'self' 'nonce-{nonce}'"
    return f"{CONTENT_SECURITY_POLICY}; style-src {allowed}; script-src {allowed}"


def add_security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    if response.mimetype == "text/html":
        headers.setdefault("Content-Security-Policy", content_security_policy(g.get("csp_nonce")))
        headers.setdefault("X-Frame-Options", "DENY")
    if request.blueprint == "admin" and request.endpoint not in CACHEABLE_ADMIN_ENDPOINTS:
        headers["Cache-Control"] = "no-store"
    return response


def forget_nonce() -> None:
    # `g` outlives a request when an app context was already pushed (tests, CLI).
    g.pop("csp_nonce", None)


def init_app(app: Flask) -> None:
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.before_request(forget_nonce)
    app.after_request(add_security_headers)
