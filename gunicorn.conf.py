"""gunicorn settings for the web process; PORT and WEB_CONCURRENCY come from the PaaS."""

import os

# Every interface (the PaaS routes to $PORT), unless WEB_HOST names one: `make run`
# (scripts/dev.py) sets 127.0.0.1, so a laptop does not offer the admin API to its network.
web_host = os.environ.get("WEB_HOST") or "0.0.0.0"
if ":" in web_host and not web_host.startswith("["):
    web_host = f"[{web_host}]"  # an IPv6 address, e.g. ::1
bind = f"{web_host}:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Slow clients: gevent reads every connection on an event loop (up to worker_connections
# per process), so a client trickling its headers or body holds a greenlet, not one of
# the few threads that did the work before (4 such connections stopped the tier). Headers
# must arrive within `keepalive` seconds; bodies are read whole within WEB_BODY_SECONDS
# (bot/web/buffering.py) before the request takes a slot.
worker_class = "gevent"
worker_connections = 1000
# Requests at work at once per process, as the threads of the threaded worker were: a
# webhook is CPU-bound Python, so more only add hand-offs (measured: 4 and 8 threads used
# more CPU per request and accepted fewer events/s than 1 or 2), and each holds a
# database connection. One on SQLite (see bot/web/buffering.py). Scale with WEB_CONCURRENCY.
threads = int(os.environ.get("WEB_THREADS", "2"))
body_seconds = float(os.environ.get("WEB_BODY_SECONDS", "60"))
timeout = 30
graceful_timeout = 20
keepalive = 5
accesslog = "-"
# Never log query strings: Meta's handshake carries hub.verify_token in one.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss'
# Masks phone numbers in the access and error logs (/admin/api/customers/<phone>/...).
# Loaded in the master: bot.core.redact imports neither Flask nor ssl (see its docstring).
logger_class = "bot.core.redact.GunicornLogger"


def post_fork(server, worker):
    """psycopg2 waits for PostgreSQL on the event loop, not blocking the process; set
    before the app opens its first connection."""
    from psycogreen.gevent import patch_psycopg

    patch_psycopg()


def post_worker_init(worker):
    """Read each request whole before it takes one of `threads` slots."""
    from bot.web.buffering import around

    worker.wsgi = around(worker.wsgi, threads=threads, body_seconds=body_seconds)
