"""The addresses of the shop's legal pages (served by bot.web.legal), for links in
messages and pages alike."""

from __future__ import annotations

from bot.core.config import Settings

PAGES = ("privacy", "terms")


def legal_url(settings: Settings, page: str) -> str | None:
    """The absolute address of a legal page, for links in messages; None without
    PUBLIC_BASE_URL (a message cannot carry a relative link)."""
    if page not in PAGES:
        raise ValueError(f"no legal page {page!r}; pages: {', '.join(PAGES)}")
    if not settings.public_base_url:
        return None
    return f"{settings.public_base_url.rstrip('/')}/legal/{page}"
