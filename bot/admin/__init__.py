"""The admin API (`/admin/api/...`): HTTP basic auth, roles, and the request rules of
`bot.auth` on every route."""

from __future__ import annotations

from flask import Blueprint

from bot.auth import auth, check_request_rules
from bot.extensions import limiter, services

bp = Blueprint("admin", __name__, url_prefix="/admin")
limiter.limit(lambda: services().settings.admin_rate_limit)(bp)


@bp.before_request
@auth.login_required
def require_admin() -> None:
    """Every admin route needs a user's credentials; writes need the admin role."""
    check_request_rules()


from bot.admin import api, customers_csv, privacy  # noqa: E402,F401  (registers the routes)
