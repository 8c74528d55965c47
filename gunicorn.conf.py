"""gunicorn settings for the web process; PORT and WEB_CONCURRENCY come from the PaaS."""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Keep-alive for shops and Meta (gthread), but few threads: a webhook is CPU-bound Python,
# so more threads per process only add GIL hand-offs (measured: 4 and 8 threads used
# more CPU per request and accepted fewer events/s than 1 or 2). Scale with WEB_CONCURRENCY.
threads = int(os.environ.get("WEB_THREADS", "2"))
worker_class = "gthread"
timeout = 30
graceful_timeout = 20
keepalive = 5
accesslog = "-"
# Never log query strings: Meta's handshake carries hub.verify_token in one.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss'
# Masks phone numbers in the access and error logs (/admin/api/customers/<phone>/...).
logger_class = "bot.logs.GunicornLogger"
