"""Logging: JSON lines in production (LOG_FORMAT=json), readable text locally, each line
tagged with the request id or RQ job id it belongs to, phone numbers masked, secrets blanked.
gunicorn's own access and error logs mask phone numbers too (`GunicornLogger`): admin
paths such as /admin/api/customers/<phone>/export carry them.

Masking happens once, on the record, before any formatter sees it: the message, its
arguments, extra fields and the traceback alike. Request bodies are never logged.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import fields
from datetime import UTC, datetime
from typing import IO, Any

from flask import Flask, Response, g, request
from rq.worker import HerokuWorker

from bot.core.config import Settings
from bot.core.redact import STANDARD_ATTRIBUTES, RedactFilter

LOG_FORMATS = ("text", "json")
REQUEST_ID_HEADER = "X-Request-Id"
HANDLER_NAME = "dakiya"
#: What a caller's (or the PaaS router's) request id may look like to be kept as is.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}", re.ASCII)
_SHORTEST_SECRET = 6  # shorter values would blank ordinary words

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
job_id_var: ContextVar[str | None] = ContextVar("job_id", default=None)


class ContextFilter(logging.Filter):
    """Stamps each record with the current request id and job id (None outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.job_id = job_id_var.get()
        tags = [f"req={record.request_id}"] if record.request_id else []
        tags += [f"job={record.job_id}"] if record.job_id else []
        record.context = f" [{' '.join(tags)}]" if tags else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, job_id, extras."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "job_id": getattr(record, "job_id", None),
        }
        for key, value in vars(record).items():
            if key not in STANDARD_ATTRIBUTES and not key.startswith("_"):
                line[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, default=str, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s"


def configure_logging(settings: Settings, stream: IO[str] | None = None) -> logging.Handler:
    """Install (or replace) the one root handler, in LOG_FORMAT, at LOG_LEVEL."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(HANDLER_NAME)
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactFilter(secret_values(settings)))
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    return handler


def secret_values(settings: Settings) -> tuple[str, ...]:
    """The values of the settings kept out of repr (secrets), long enough to match safely."""
    values = (getattr(settings, f.name) for f in fields(settings) if not f.repr)
    return tuple(v for v in values if isinstance(v, str) and len(v) >= _SHORTEST_SECRET)


def init_app(app: Flask) -> None:
    """A request id for every request: the caller's X-Request-Id if sane, else a new one;
    set for the request's log lines and echoed in the response."""

    @app.before_request
    def _start_request_context() -> None:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = given if _SANE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        g.request_id_token = request_id_var.set(g.request_id)

    @app.after_request
    def _echo_request_id(response: Response) -> Response:
        if "request_id" in g:
            response.headers[REQUEST_ID_HEADER] = g.request_id
        return response

    @app.teardown_request
    def _end_request_context(_exc: BaseException | None) -> None:
        g.pop("request_id", None)  # `g` can outlive the request (a pushed app context)
        token = g.pop("request_id_token", None)
        if token is not None:
            request_id_var.reset(token)


@contextmanager
def job_context(job_id: str) -> Iterator[None]:
    """Log lines written inside carry `job_id`."""
    token = job_id_var.set(job_id)
    try:
        yield
    finally:
        job_id_var.reset(token)


class JobLogContext:
    """Mixin for an RQ worker class: the job's own log lines carry its job id."""

    def perform_job(self, job, queue, *args, **kwargs):
        with job_context(job.id):
            return super().perform_job(job, queue, *args, **kwargs)


class LoggingHerokuWorker(JobLogContext, HerokuWorker):
    """RQ's HerokuWorker (graceful stop on the dyno's SIGTERM) with job ids in the logs."""
