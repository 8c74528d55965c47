"""The admin API (`/admin/api/...`), behind HTTP basic auth with a hashed password."""

from __future__ import annotations

import hmac

from flask import Blueprint
from flask_httpauth import HTTPBasicAuth
from werkzeug.security import check_password_hash

from bot.errors import error_response
from bot.extensions import services

bp = Blueprint("admin", __name__, url_prefix="/admin")
auth = HTTPBasicAuth(realm="Dakiya admin")


@auth.verify_password
def verify_admin(username: str, password: str) -> str | None:
    settings = services().settings
    if not settings.admin_password_hash or not password:
        return None  # no password configured: the admin API stays shut
    if not hmac.compare_digest(username.encode(), settings.admin_username.encode()):
        return None
    return username if check_password_hash(settings.admin_password_hash, password) else None


@auth.error_handler
def unauthorized(status: int):
    return error_response(status, "unauthorized", "valid admin credentials are required")


@bp.before_request
@auth.login_required
def require_admin() -> None:
    """Every admin route needs the admin's credentials."""


from bot.admin import api, privacy  # noqa: E402,F401  (registers the routes)
