"""The admin area — the API (`/admin/api/...`), the dashboard (`/admin/`) and RQ's jobs
(`/admin/rq`): HTTP basic auth, roles, and the request rules of `bot.web.auth` on every route."""

from __future__ import annotations

from flask import Blueprint

from bot.extensions import limiter, services
from bot.web.auth import auth, check_request_rules

bp = Blueprint(
    "admin", __name__, url_prefix="/admin", template_folder="templates", static_folder="static"
)
limiter.limit(lambda: services().settings.admin_rate_limit)(bp)


@bp.before_request
@auth.login_required
def require_admin() -> None:
    """Every admin route needs a user's credentials; writes need the admin role."""
    check_request_rules()


from bot.web.admin import (  # noqa: E402,F401  (registers the routes)
    analytics,
    api,
    campaigns,
    crm,
    customers_csv,
    dashboard,
    dead_letters,
    experiments,
    jobs,
    privacy,
    spend,
    unhandled,
)
