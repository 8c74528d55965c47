"""No log line carries a customer's full phone number: not gunicorn's access log (admin
paths such as /admin/api/customers/<phone>/export hold one), not its error log, and not
the app's own lines across the flows that handle numbers."""

from __future__ import annotations

import io
import json
import logging
import runpy
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from gunicorn.config import Config

from bot.web.logs import HANDLER_NAME
from tests.conftest import ADMIN, SECRETS

ROOT = Path(__file__).parent.parent
ASHA, RAVI = "+919812345678", "+447911123456"
#: What a leak would contain: every number's digits after its country code.
LEAKS = ("9812345678", "7911123456")


def gunicorn_logger(tmp_path):
    """gunicorn's logger exactly as the shipped gunicorn.conf.py configures it, writing
    its access and error logs to files."""
    cfg = Config()
    for name, value in runpy.run_path(str(ROOT / "gunicorn.conf.py")).items():
        if name in cfg.settings:
            cfg.set(name, value)
    cfg.set("accesslog", str(tmp_path / "access.log"))
    cfg.set("errorlog", str(tmp_path / "error.log"))
    return cfg.logger_class(cfg)


def log_access(logger, path: str, query: str = "") -> None:
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": path + (f"?{query}" if query else ""),
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.7",
        "HTTP_REFERER": f"https://shop.example.in/admin/customers/{ASHA}",
    }
    response = SimpleNamespace(status="200 OK", sent=512, headers=[])
    request = SimpleNamespace(headers=[("REFERER", environ["HTTP_REFERER"])])
    logger.access(response, request, environ, timedelta(milliseconds=12))


@pytest.mark.parametrize(
    "path",
    [
        f"/admin/api/customers/{ASHA}/export",
        f"/admin/api/customers/{ASHA[1:]}/export",
        "/admin/api/customers/%2B919812345678/export",
        f"/admin/api/customers/{RAVI}",
    ],
)
def test_the_access_log_masks_phone_numbers_in_paths(tmp_path, path):
    logger = gunicorn_logger(tmp_path)
    log_access(logger, path)
    for handler in logger.access_log.handlers:
        handler.flush()
    line = (tmp_path / "access.log").read_text()
    assert "GET /admin/api/customers/" in line and " 200 " in line  # the line is there
    assert not any(leak in line for leak in LEAKS), line
    assert "+91" in line or "+44" in line  # masked, not dropped: country code kept


def test_gunicorns_error_log_masks_phone_numbers(tmp_path):
    logger = gunicorn_logger(tmp_path)
    logger.error("Invalid request from ip=1.2.3.4: /admin/api/customers/%s", ASHA)
    for handler in logger.error_log.handlers:
        handler.flush()
    text = (tmp_path / "error.log").read_text()
    assert "Invalid request" in text and "9812345678" not in text


@pytest.fixture
def app_log(make_app, settings):
    """The app's own log output (its one root handler) at DEBUG, SQL included."""
    app = make_app(settings.replace(log_level="DEBUG"))
    stream = io.StringIO()
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == HANDLER_NAME)
    handler.setStream(stream)
    logging.getLogger("peewee").setLevel(logging.DEBUG)
    yield app, stream
    logging.getLogger("peewee").setLevel(logging.NOTSET)


def test_no_app_log_line_holds_a_full_number_across_the_flows(app_log, sign, payload, run_jobs):
    app, stream = app_log
    client = app.test_client()
    order = payload("generic/order_placed_minimal")
    order["customer"]["phone"] = ASHA
    raw = json.dumps(order).encode()
    signature = "sha256=" + sign(SECRETS["order_webhook_secret"], raw)
    placed = client.post(
        "/webhooks/orders",
        data=raw,
        headers={"X-Signature-256": signature},
        content_type="application/json",
    )
    assert placed.status_code in (200, 202)
    run_jobs()
    assert client.get(f"/admin/api/customers/{ASHA}/export", headers=ADMIN).status_code == 200
    assert client.get(f"/admin/api/customers?q={ASHA[1:]}", headers=ADMIN).status_code == 200
    assert client.get(f"/admin/api/customers/{RAVI}/export", headers=ADMIN).status_code == 404
    created = client.post("/admin/api/customers", json={"phone": RAVI}, headers=ADMIN)
    assert created.status_code == 201
    assert client.delete(f"/admin/api/customers/{RAVI}", headers=ADMIN).status_code == 200
    text = stream.getvalue()
    assert "SELECT" in text  # the SQL (with its parameters) was logged too
    assert not any(leak in text for leak in LEAKS), [
        line for line in text.splitlines() if any(leak in line for leak in LEAKS)
    ][:5]
