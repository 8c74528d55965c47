"""A shop's CRM on a real local socket: records each webhook's raw body and headers and
answers with scripted status codes (200 when nothing is scripted)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from flask import Flask, request
from werkzeug.serving import make_server


@dataclass
class Received:
    body: bytes
    headers: dict


@dataclass
class CrmReceiver:
    received: list[Received] = field(default_factory=list)
    scripted: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        app = Flask("fake_crm")

        @app.post("/hooks/dakiya")
        def hook():
            with self._lock:
                self.received.append(Received(request.get_data(), dict(request.headers)))
                status = self.scripted.pop(0) if self.scripted else 200
            return "", status

        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}/hooks/dakiya"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> CrmReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()

    def script(self, *statuses: int) -> None:
        self.scripted.extend(statuses)
