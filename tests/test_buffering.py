"""Requests read whole before they run (bot/web/buffering.py, as gunicorn's gevent worker
runs the app): a stalled body is answered 408 without taking a slot, a body that
arrives in pieces reaches the app whole, and only a few requests run at once."""

from __future__ import annotations

import io
import json

import gevent
import gevent.event
from werkzeug.test import Client, EnvironBuilder, run_wsgi_app

from bot.core.models import OrderEvent
from bot.web.buffering import BufferedRequests, around
from tests.chaos.system import order_event


class Trickle(io.RawIOBase):
    """A request body arriving a few bytes at a time, the event loop running between
    pieces; `stall` stops it after that many bytes, as a client that stops sending."""

    def __init__(self, body: bytes, piece: int = 7, stall: int | None = None) -> None:
        self.body, self.piece, self.stall, self.sent = body, piece, stall, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.stall is not None and self.sent >= self.stall:
            gevent.event.Event().wait()  # never set: only the deadline ends this
        gevent.idle()
        n = self.piece if size < 0 else min(size, self.piece)
        chunk = self.body[self.sent : self.sent + n]
        self.sent += len(chunk)
        return chunk


def post(wsgi, delivery, stream: Trickle) -> tuple[int, dict]:
    """POST `delivery` with its body read from `stream`: the status and JSON answer."""
    environ = EnvironBuilder(
        path=delivery.path, method="POST", headers=delivery.headers, data=delivery.body
    ).get_environ()
    environ["wsgi.input"] = stream  # as gunicorn hands it over: read from the socket
    body, status, _ = run_wsgi_app(wsgi, environ, buffered=True)
    return int(status.split()[0]), json.loads(b"".join(body) or b"{}")


def test_a_body_arriving_in_pieces_reaches_the_app_whole(app):
    delivery = order_event("buffer", 1)
    wsgi = around(app, threads=2, body_seconds=5)
    status, answer = post(wsgi, delivery, Trickle(delivery.body))
    assert status == 202, answer
    assert OrderEvent.get_by_id(answer["event_id"]).order.external_id == "Cbuffer1"


def test_a_body_that_stops_arriving_is_answered_408_and_never_handled(app):
    delivery = order_event("buffer", 2)
    wsgi = around(app, threads=2, body_seconds=0.2)
    status, answer = post(wsgi, delivery, Trickle(delivery.body, stall=10))
    assert (status, answer["error"]["code"]) == (408, "request_timeout")
    assert OrderEvent.select().count() == 0


def test_a_body_over_the_limit_is_refused_by_the_app_unread(app):
    delivery = order_event("buffer", 3)
    wsgi = BufferedRequests(app, slots=1, body_seconds=0.2, max_bytes=len(delivery.body) - 1)
    app.config["MAX_CONTENT_LENGTH"] = len(delivery.body) - 1
    status, _ = post(wsgi, delivery, Trickle(delivery.body, stall=0))  # would hang if read
    assert status == 413


def test_requests_run_as_many_at_once_as_there_are_slots_one_on_sqlite(app, database_url):
    running, most = 0, 0

    @app.get("/_test/busy")
    def busy():
        nonlocal running, most
        running += 1
        most = max(most, running)
        gevent.idle()  # as a PostgreSQL or Redis round trip lets others run
        running -= 1
        return "ok"

    wsgi = around(app, threads=2, body_seconds=5)
    calls = [gevent.spawn(lambda: Client(wsgi).get("/_test/busy").status_code) for _ in range(6)]
    gevent.joinall(calls, timeout=10)
    assert [call.value for call in calls] == [200] * 6
    assert most == (1 if database_url.startswith("sqlite") else 2)
