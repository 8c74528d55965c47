"""A local fake of Meta's Graph API and Interakt's public API, on a real socket.

Used where `responses` cannot reach (a forked RQ job, gunicorn, the benchmark): point
META_API_BASE_URL / INTERAKT_API_BASE_URL at `FakeWhatsApp.url`. It records every request
and answers like the real APIs (PROVIDERS.md §1.3, §2.2), or with scripted errors.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from dataclasses import dataclass, field

from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from tests.fakes.provider_server import interakt_accepted, meta_accepted, meta_error


@dataclass
class Recorded:
    path: str
    headers: dict
    json: dict


@dataclass
class FakeWhatsApp:
    host: str = "127.0.0.1"
    latency: float = 0.0
    requests: list[Recorded] = field(default_factory=list)
    scripted: list[tuple[int, dict]] = field(default_factory=list)
    #: Answers by recipient ("to" / "phoneNumber"), for batches sent concurrently.
    by_recipient: dict[str, tuple[int, dict]] = field(default_factory=dict)
    #: Templates Meta categorises as marketing on an account whose marketing is off on
    #: the Cloud API (`disable_marketing_messages_on_cloud_api`, §9.3): /messages
    #: refuses them with 131063, /marketing_messages takes them.
    marketing_only_templates: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.app = self._build()
        self._server = make_server(self.host, 0, self.app, threaded=True)
        self.url = f"http://{self.host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> FakeWhatsApp:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()

    def script(self, *responses: tuple[int, dict]) -> None:
        """Answer the next requests with these (status, body) pairs, in order."""
        self.scripted.extend(responses)

    def reset(self) -> None:
        self.requests.clear()
        self.scripted.clear()
        self.by_recipient.clear()
        self.marketing_only_templates.clear()
        self.latency = 0.0

    def _next(self, default: tuple[int, dict]) -> tuple[int, dict]:
        with self._lock:
            body = request.get_json()
            self.requests.append(Recorded(request.path, dict(request.headers), body))
            to = (
                (body.get("to") or body.get("recipient") or body.get("fullPhoneNumber"))
                if isinstance(body, dict)
                else None
            )
            if to in self.by_recipient:
                return self.by_recipient[to]
            return self.scripted.pop(0) if self.scripted else default

    def _build(self) -> Flask:
        app = Flask("fake_whatsapp")

        @app.post("/<version>/<phone_number_id>/messages")
        def meta_send(version: str, phone_number_id: str):
            sent = request.get_json(silent=True) or {}
            template = (sent.get("template") or {}).get("name")
            if template in self.marketing_only_templates:
                return self._answer(
                    (400, meta_error(131063, "Marketing templates disabled for Cloud API"))
                )
            if problem := _invalid_interactive(sent):
                return self._answer((400, meta_error(100, "Invalid parameter", problem)))
            return self._answer(self._accepted(sent))

        @app.post("/<version>/<phone_number_id>/marketing_messages")
        def meta_marketing_send(version: str, phone_number_id: str):
            # Marketing templates only (§9.3); anything else is refused as Graph does.
            sent = request.get_json(silent=True) or {}
            if sent.get("type") != "template":
                error = meta_error(100, "Invalid parameter", "Message must be a template message")
                return self._answer((400, error))
            return self._answer(self._accepted(sent))

        @app.post("/v1/public/message/")
        def interakt_send():
            return self._answer((201, interakt_accepted(str(uuid.uuid4()))))

        return app

    def _accepted(self, sent: dict) -> tuple[int, dict]:
        wamid = f"wamid.FAKE{next(self._ids):08d}"
        return 200, meta_accepted(sent.get("to"), wamid, sent.get("recipient"))

    def _answer(self, default: tuple[int, dict]):
        status, body = self._next(default)
        time.sleep(self.latency)  # recorded on arrival, answered after the latency
        return jsonify(body), status


def _invalid_interactive(sent: dict) -> str | None:
    """What Graph would refuse in an interactive message Dakiya sends: the
    request-contact-info kind (§9.1: a body text and the action named for it), and reply
    buttons (§1.2: 1-3 buttons, each `type: reply` with a unique id of at most 256
    characters and a title of 1-20 characters; body text at most 1024)."""
    if sent.get("type") != "interactive":
        return None
    interactive = sent.get("interactive") or {}
    text = (interactive.get("body") or {}).get("text")
    if not text:
        return "interactive.body.text is required"
    if interactive.get("type") == "request_contact_info":
        if interactive.get("action") != {"name": "request_contact_info"}:
            return "interactive.action.name must be request_contact_info"
        return None
    if interactive.get("type") != "button":
        return f"interactive.type {interactive.get('type')!r} is not one Dakiya sends"
    if len(text) > 1024:
        return "interactive.body.text is longer than 1024 characters"
    buttons = (interactive.get("action") or {}).get("buttons") or []
    if not 1 <= len(buttons) <= 3:
        return "interactive.action.buttons must hold 1 to 3 buttons"
    ids = [((b.get("reply") or {}).get("id")) for b in buttons]
    titles = [((b.get("reply") or {}).get("title")) for b in buttons]
    if any(b.get("type") != "reply" for b in buttons):
        return "each button's type must be reply"
    if not all(ids) or len(set(ids)) != len(ids) or any(len(i) > 256 for i in ids):
        return "button ids must be unique, 1 to 256 characters"
    if not all(titles) or any(len(t) > 20 for t in titles):
        return "button titles must be 1 to 20 characters"
    return None
