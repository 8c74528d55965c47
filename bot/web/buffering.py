"""Every request read whole before it may run, so slow clients wait on the event loop
instead of holding the few handler slots: the in-process counterpart of a buffering
proxy, which gunicorn.conf.py wraps around the app in each gevent worker.

gunicorn's gevent worker reads each connection in a greenlet of its own and gives up on
headers that take longer than `keepalive` seconds; the body is the app's to read, so
this reads it (with a deadline) before taking a slot. The slots keep what the threaded
worker had: at most `slots` requests of a process at work at once, hence as many
database connections, and on SQLite one, because a greenlet waiting for SQLite's write
lock blocks its whole process, including the greenlet that holds the lock.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable

import gevent
from flask import Flask
from gevent.lock import BoundedSemaphore
from peewee import SqliteDatabase

from bot.core.models import db
from bot.customers.customers_csv import MAX_IMPORT_BYTES
from bot.web.errors import error_response

#: Bodies up to this size stay in memory while they wait; larger ones (CSV imports) go
#: to a temporary file, as nginx's client_body_buffer_size does.
IN_MEMORY_BYTES = 1024 * 1024
CHUNK_BYTES = 64 * 1024


class BodyTooSlow(Exception):
    """The client did not send its whole body within the deadline."""


class BufferedRequests:
    """WSGI middleware: read the body (at most `max_bytes`, within `body_seconds`), then
    run `app` in one of `slots`; 408 for a body that does not arrive in time."""

    def __init__(self, app: Flask, *, slots: int, body_seconds: float, max_bytes: int) -> None:
        self.app = app
        self.slots = BoundedSemaphore(slots)
        self.body_seconds = body_seconds
        self.max_bytes = max_bytes

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        try:
            self._read_body(environ)
        except BodyTooSlow:
            return self._too_slow(environ, start_response)
        with self.slots:
            # Flask pops its contexts (closing the database connection) before it
            # returns the response, so the slot is held exactly while the app works.
            return self.app(environ, start_response)

    def _read_body(self, environ: dict) -> None:
        length = environ.get("CONTENT_LENGTH")
        if length and length.isdigit() and int(length) > self.max_bytes:
            return  # the app refuses it (413) without reading a byte
        stream = environ["wsgi.input"]
        body = tempfile.SpooledTemporaryFile(max_size=IN_MEMORY_BYTES)  # noqa: SIM115
        read = 0
        with gevent.Timeout(self.body_seconds, BodyTooSlow):
            # One byte past the limit is enough for the app to answer 413 itself.
            while read <= self.max_bytes:
                chunk = stream.read(min(CHUNK_BYTES, self.max_bytes + 1 - read))
                if not chunk:
                    break
                body.write(chunk)
                read += len(chunk)
        body.seek(0)
        environ["wsgi.input"] = body

    def _too_slow(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        with self.app.app_context():
            response, status = error_response(
                408, "request_timeout", f"the body did not arrive within {self.body_seconds:g} s"
            )
        response.status_code = status
        return response(environ, start_response)


def around(app: Flask, *, threads: int, body_seconds: float) -> BufferedRequests:
    """`app` behind BufferedRequests with `threads` slots (one on SQLite), buffering
    bodies up to the largest the app accepts anywhere (the CSV import's)."""
    slots = 1 if isinstance(db.obj, SqliteDatabase) else threads
    max_bytes = max(app.config["MAX_CONTENT_LENGTH"] or 0, MAX_IMPORT_BYTES)
    return BufferedRequests(app, slots=slots, body_seconds=body_seconds, max_bytes=max_bytes)
