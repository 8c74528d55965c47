"""The WSGI entry point for gunicorn (`gunicorn wsgi:app`) and `flask --app wsgi`: the app,
plus the job commands (`sweep`, `redact`, `rollup`, ...) registered beside their jobs."""

import jobs
from bot import create_app_or_exit

app = create_app_or_exit()
jobs.init_app(app)
