"""Dakiya: WhatsApp order notifications and customer replies for online shops."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from bot.config import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app: settings, extensions, blueprints and CLI commands — nothing else."""
    # Imported here, not at the top: `import bot.<module>` must stay light, since
    # gunicorn's master loads bot.redact before the gevent workers patch ssl.
    from flask import Flask

    import jobs
    from bot import api, auth, errors, extensions, health, logs, models, openapi, security
    from bot.config import load_settings

    settings = settings or load_settings()
    logs.configure_logging(settings)
    app = Flask(__name__)
    app.url_map.converters["int"] = api.DatabaseIdConverter
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["JSON_SORT_KEYS"] = False
    extensions.init_app(app, settings)
    errors.init_app(app)
    logs.init_app(app)
    security.init_app(app)
    from bot.webhooks import bp as webhooks_bp

    app.register_blueprint(webhooks_bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(openapi.bp)
    from bot.admin import bp as admin_bp

    app.register_blueprint(admin_bp)
    from bot.metrics import bp as metrics_bp

    app.register_blueprint(metrics_bp)
    from bot.legal import bp as legal_bp

    app.register_blueprint(legal_bp)
    # CLI commands (`flask --app wsgi ...`), each defined beside the code it serves.
    app.cli.add_command(models.migrate_command)
    auth.init_app(app)
    jobs.init_app(app)
    return app


def create_app_or_exit() -> Flask:
    """`create_app()` for process entry points: bad configuration ends the process with
    one line naming every variable at fault, not a traceback."""
    from bot.config import ConfigError

    try:
        return create_app()
    except ConfigError as exc:
        sys.exit(f"dakiya: {exc}")
