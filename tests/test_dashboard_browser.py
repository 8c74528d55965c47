"""The dashboard in a real browser: Debian's headless Chromium loads `/admin/` from a live
server holding seeded data, runs the page's scripts under its real CSP, and draws the
charts; the test reads back the numbers the charts drew and keeps a screenshot.

scripts/test.sh installs `chromium`; without it this test fails rather than skips.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest
from werkzeug.serving import make_server

from tests.conftest import ADMIN_PASSWORD
from tests.test_dashboard import (
    DELIVERY_RATE,
    FUNNEL,
    OPT_OUTS,
    READ_RATE,
    SPEND_BY_CATEGORY,
    seed_messages,
    seed_spend,
)


@pytest.fixture
def live_server(app):
    """The app on a free loopback port, served from a thread for this test."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)


def chromium(url: str, profile: Path, *args: str, height: int = 844) -> str:
    """Run headless Chromium on `url`, 390 px wide like a phone, until the page is idle
    (5 s of virtual time)."""
    binary = shutil.which("chromium")
    assert binary, "Debian's chromium is needed: apt-get install chromium (scripts/test.sh does)"
    done = subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",  # we run as root in CI
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--user-data-dir={profile}",
            f"--window-size=390,{height}",
            "--virtual-time-budget=5000",
            *args,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class Charts(HTMLParser):
    """Each chart figure's attributes, and its canvas's, from a dumped DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: dict[str, dict] = {}
        self._current: str | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        if tag == "figure" and "data-chart" in attributes:
            self._current = attributes["id"].removeprefix("chart-")
            self.figures[self._current] = attributes
        elif tag == "canvas" and self._current:
            self.figures[self._current]["canvas"] = attributes

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self._current = None


def test_dashboard_draws_its_charts_with_the_right_numbers_on_a_phone(
    live_server, tmp_path, redis_conn
):
    seed_messages()
    seed_spend()
    # Chromium takes the login from the address for the page and its same-origin files.
    url = f"http://admin:{quote(ADMIN_PASSWORD)}@{live_server}/admin/"

    dom = chromium(url, tmp_path / "profile", "--dump-dom")

    charts = Charts()
    charts.feed(dom)
    assert set(charts.figures) == {"funnel", "volume", "rates", "opt_outs", "spend"}
    for name, figure in charts.figures.items():
        assert "data-draw-error" not in figure, figure["data-draw-error"]
        assert "data-drawn" in figure, f"{name} was not drawn"
        assert "height: 220px" in figure["canvas"].get("style", ""), "Chart.js sized the canvas"
    drawn = {name: json.loads(figure["data-drawn"]) for name, figure in charts.figures.items()}
    assert drawn["funnel"] == [FUNNEL]
    assert [series[-3:] for series in drawn["rates"]] == [DELIVERY_RATE, READ_RATE]
    assert drawn["opt_outs"][0][-3:] == OPT_OUTS
    assert len(drawn["volume"]) == 4 and all(len(series) == 14 for series in drawn["volume"])
    assert drawn["spend"] == [list(SPEND_BY_CATEGORY.values())]
    assert "Message undeliverable" in dom
    assert "WhatsApp spend this month" in dom and "INR 1.09" in dom

    screenshot = tmp_path / "dashboard.png"
    chromium(url, tmp_path / "profile", f"--screenshot={screenshot}", height=2600)  # whole page
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 20_000  # charts and tables, not a blank page
