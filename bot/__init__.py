"""Dakiya: WhatsApp order notifications and customer replies for online shops."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from bot.core.config import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app: settings, extensions, blueprints and CLI commands — nothing else."""
    # Imported here, not at the top: `import bot.<module>` must stay light, since
    # gunicorn's master loads bot.core.redact before the gevent workers patch ssl.
    from flask import Flask

    from bot import extensions
    from bot.core import models
    from bot.core.config import load_settings
    from bot.web import (
        admin,
        auth,
        contract,
        errors,
        health,
        legal,
        logs,
        metrics,
        openapi,
        security,
        webhooks,
    )

    settings = settings or load_settings()
    logs.configure_logging(settings)
    app = Flask(__name__)
    app.url_map.converters["int"] = contract.DatabaseIdConverter
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["JSON_SORT_KEYS"] = False
    extensions.init_app(app, settings)
    errors.init_app(app)
    logs.init_app(app)
    security.init_app(app)
    for blueprint in (webhooks.bp, health.bp, openapi.bp, admin.bp, metrics.bp, legal.bp):
        app.register_blueprint(blueprint)
    # CLI commands (`flask --app wsgi ...`), each defined beside the code it serves; the
    # job commands are registered by the entry point (wsgi.py: `jobs.init_app`), since
    # bot/ never imports jobs/ (jobs/ imports bot/).
    app.cli.add_command(models.migrate_command)
    auth.init_app(app)
    return app


def create_app_or_exit() -> Flask:
    """`create_app()` for process entry points: bad configuration ends the process with
    one line naming every variable at fault, not a traceback."""
    from bot.core.config import ConfigError

    try:
        return create_app()
    except ConfigError as exc:
        sys.exit(f"dakiya: {exc}")
