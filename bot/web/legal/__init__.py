"""Public legal pages (`/legal/privacy`, `/legal/terms`): what the shop's customers are
told about WhatsApp messages, the data kept, for how long, and how to stop or erase it."""

from __future__ import annotations

from flask import Blueprint, render_template

from bot.core.legal import legal_url
from bot.extensions import services

PROVIDER_NAMES = {
    "meta": "Meta (WhatsApp Business Platform)",
    "interakt": "Interakt and Meta (WhatsApp Business Platform)",
    "sandbox": "Meta (WhatsApp Business Platform)",
}

bp = Blueprint("legal", __name__, url_prefix="/legal", template_folder="templates")


@bp.get("/privacy")
def privacy_notice():
    return _render("privacy")


@bp.get("/terms")
def terms():
    return _render("terms")


def _render(page: str):
    settings = services().settings
    return render_template(
        f"legal/{page}.html",
        shop_name=settings.shop_name,
        contact_email=settings.shop_contact_email,
        retention_days=settings.retention_days,
        processors=PROVIDER_NAMES.get(settings.whatsapp_provider, PROVIDER_NAMES["meta"]),
        privacy_url=legal_url(settings, "privacy") or "/legal/privacy",
        terms_url=legal_url(settings, "terms") or "/legal/terms",
    )
