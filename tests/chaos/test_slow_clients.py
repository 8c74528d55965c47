"""One client holds 64 connections trickling headers and 64 trickling bodies, a byte a
second each, reconnecting whenever one is dropped: the web process, as the Procfile
starts it, still answers everyone else's health checks and signed order webhooks."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import requests

from bot.core.models import OrderEvent
from tests.chaos.slowloris import SlowClients
from tests.chaos.system import eventually, order_event

#: A generous liveness bound for one ordinary request, not a speed target.
ANSWER_WITHIN = 10


def timed(method: str, url: str, **kwargs) -> tuple[int | None, float, dict]:
    """One request on a fresh connection: its status (None: no answer within
    ANSWER_WITHIN seconds), how long it took, and its JSON body."""
    started = time.monotonic()
    try:
        response = requests.request(method, url, timeout=ANSWER_WITHIN, **kwargs)
    except requests.RequestException:
        return None, time.monotonic() - started, {}
    body = response.json() if response.headers.get("Content-Type") == "application/json" else {}
    return response.status_code, time.monotonic() - started, body


def test_web_answers_others_while_one_client_trickles_128_connections(make_system):
    # No worker runs (nothing is sent); a body must arrive within 4 s (default 60).
    system = make_system("http://127.0.0.1:9", WEB_BODY_SECONDS="4")
    url = system.start_web()
    slow = SlowClients(urlsplit(url).port, headers=64, bodies=64).start()
    try:
        assert slow.open == 128, f"only {slow.open} slow connections opened"
        # Past gunicorn's keepalive (5 s), so a server that drops slow headers has
        # dropped some and is being trickled at again on new connections.
        eventually(lambda: slow.rounds >= 8, 30, "eight trickle rounds")
        deliveries = [order_event("slow", i) for i in range(8)]
        calls = [("GET", f"{url}/healthz", {})] * 8 + [
            ("POST", f"{url}{d.path}", {"data": d.body, "headers": d.headers}) for d in deliveries
        ]
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda call: timed(call[0], call[1], **call[2]), calls))
        attack = f"{slow.open} slow connections open, {slow.dropped} dropped and reopened"
        statuses = [status for status, _, _ in answers]
        seconds = sorted(round(took, 2) for _, took, _ in answers)
        print(f"answered in {seconds} s while {attack}")  # noqa: T201  (the measurement)
        assert statuses == [200] * 8 + [202] * 8, f"{statuses} in {seconds} s while {attack}"
        # Slow headers are dropped unanswered; a body that does not arrive in time: 408.
        eventually(lambda: slow.answers, 30, "the server to answer a slow body")
        assert {line.split()[1] for line in slow.answers} == {"408"}, slow.answers
    finally:
        slow.stop()
    stored = {e.id for e in OrderEvent.select(OrderEvent.id)}
    assert {body["event_id"] for _, _, body in answers[8:]} <= stored
