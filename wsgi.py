"""The WSGI entry point for gunicorn (`gunicorn wsgi:app`) and `flask --app wsgi`."""

import sys

from bot import create_app
from bot.config import ConfigError

try:
    app = create_app()
except ConfigError as exc:  # a clear one-line reason instead of a traceback
    sys.exit(f"dakiya: {exc}")
