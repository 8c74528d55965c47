"""Logs: JSON lines in production, a request id per request and a job id per job on every
line, phone numbers masked and secrets blanked wherever they appear."""

from __future__ import annotations

import io
import json
import logging

import pytest
from rq import Queue, SimpleWorker

from bot.core.redact import mask_phones
from bot.web.logs import (
    HANDLER_NAME,
    JobLogContext,
    configure_logging,
    job_context,
)
from tests.conftest import SECRETS

log = logging.getLogger("tests.logs")


def log_probe(phone: str) -> str:
    """An RQ job: logs a line about a customer, the way send jobs do."""
    logging.getLogger("jobs.probe").warning("sending to %s", phone)
    return "done"


@pytest.fixture
def json_lines(make_app, settings):
    """An app logging JSON into a buffer; returns a function reading the lines so far."""
    app = make_app(settings.replace(log_format="json"))
    stream = io.StringIO()
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == HANDLER_NAME)
    handler.setStream(stream)

    @app.get("/_probe/log")
    def _probe():
        log.warning("customer %s asked about order %s", "+919812345678", "#1042")
        return {"ok": True}

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    lines.app = app
    return lines


def test_a_json_log_line_carries_the_request_id_that_the_response_echoes(json_lines):
    client = json_lines.app.test_client()
    response = client.get("/_probe/log", headers={"X-Request-Id": "req-abc-123"})
    assert response.headers["X-Request-Id"] == "req-abc-123"
    (line,) = [line for line in json_lines() if line["logger"] == "tests.logs"]
    assert line["request_id"] == "req-abc-123"
    assert line["level"] == "WARNING"
    assert line["job_id"] is None
    assert set(line) >= {"time", "level", "logger", "message", "request_id", "job_id"}


def test_a_request_without_a_sane_id_gets_a_fresh_one(json_lines):
    client = json_lines.app.test_client()
    first = client.get("/_probe/log", headers={"X-Request-Id": 'bad id {forged} "line"'})
    second = client.get("/_probe/log")
    ids = [first.headers["X-Request-Id"], second.headers["X-Request-Id"]]
    assert all(len(i) == 32 and i.isalnum() for i in ids) and ids[0] != ids[1]
    logged = [line["request_id"] for line in json_lines() if line["logger"] == "tests.logs"]
    assert logged == ids


def test_log_lines_outside_a_request_carry_no_request_id(json_lines):
    json_lines.app.test_client().get("/_probe/log")
    log.warning("after the request")
    assert json_lines()[-1]["request_id"] is None


def test_phone_numbers_are_masked_in_messages_and_arguments(json_lines):
    json_lines.app.test_client().get("/_probe/log")
    (line,) = [line for line in json_lines() if line["logger"] == "tests.logs"]
    assert line["message"] == "customer +91********78 asked about order #1042"
    log.warning("raw %s", "919812345678", extra={"phone": "+91 98123-45678"})
    last = json_lines()[-1]
    assert "9812345678" not in json.dumps(last)
    assert last["phone"] == "+91********78"


def test_phone_numbers_in_tracebacks_are_masked(json_lines):
    try:
        raise ValueError("no customer +919812345678")
    except ValueError:
        log.exception("lookup failed")
    line = json_lines()[-1]
    assert "+91********78" in line["exception"] and "9812345678" not in line["exception"]


def test_secret_values_are_never_written(json_lines):
    log.warning("signing with %s", SECRETS["order_webhook_secret"])
    assert json_lines()[-1]["message"] == "signing with [secret]"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("to +919812345678.", "to +91********78."),
        ("to 919812345678", "to +91********78"),
        ("to +91 98123 45678", "to +91********78"),
        ("+14155550123,+447700900123", "+14*******23,+44********23"),
        ("order 1042 at 2026-11-25 11:40:02", "order 1042 at 2026-11-25 11:40:02"),
        ("shopify id 4500000000000000001", "shopify id 4500000000000000001"),  # 19 digits
        ("event 987654321", "event 987654321"),  # 9 digits: not a phone
        ("job 3705f78e-a422-4461-b8cf-f5288183606a", "job 3705f78e-a422-4461-b8cf-f5288183606a"),
        ("spool entry 1764687000000-0", "spool entry 1764687000000-0"),
        ("phone=919812345678&x", "phone=+91********78&x"),
        ("customer_919812345678", "customer_+91********78"),
        ("/customers/+919812345678/export", "/customers/+91********78/export"),
    ],
)
def test_mask_phones(text, masked):
    assert mask_phones(text) == masked


def test_text_format_is_readable_with_the_request_id(make_app, settings):
    app = make_app(settings.replace(log_format="text"))
    stream = io.StringIO()
    configure_logging(app.extensions["dakiya"].settings, stream)

    @app.get("/_probe/text")
    def _probe():
        log.warning("hello")
        return {}

    app.test_client().get("/_probe/text", headers={"X-Request-Id": "r-1"})
    assert " WARNING tests.logs [req=r-1]: hello" in stream.getvalue()


class JobLoggingWorker(JobLogContext, SimpleWorker):
    """What jobs/worker.py runs (on HerokuWorker), without forking."""


def test_a_jobs_log_lines_carry_its_job_id(json_lines, redis_conn):
    queue = Queue("orders", connection=redis_conn)
    job = queue.enqueue(log_probe, "+919812345678")
    JobLoggingWorker([queue], connection=redis_conn).work(burst=True)
    (line,) = [line for line in json_lines() if line["logger"] == "jobs.probe"]
    assert line["job_id"] == job.id
    assert line["message"] == "sending to +91********78"


def test_job_context_is_left_behind_when_the_job_ends():
    with job_context("job-1"):
        pass
    from bot.web.logs import job_id_var

    assert job_id_var.get() is None


def test_log_format_must_be_text_or_json(settings):
    from bot.core.config import ConfigError, validate

    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        validate(settings.replace(log_format="yaml"))
