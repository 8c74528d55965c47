"""A local fake of a WooCommerce store's REST API (v3), on a real socket: `GET
/wp-json/wc/v3/orders` as WooCommerce's REST API docs ("List all orders") describe it:
HTTP Basic auth with the consumer key and secret, `modified_after` (with
`dates_are_gmt`), `per_page`, `page`, `orderby=modified`, `order=asc`, the `X-WP-Total`
and `X-WP-TotalPages` headers, and WooCommerce's error body
`{"code", "message", "data": {"status"}}` for a wrong key. `outage` answers 503 like a
store whose PHP is down.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from datetime import datetime

from flask import Flask, jsonify, request
from werkzeug.serving import make_server


@dataclass
class FakeWooCommerce:
    key: str = "ck_test_0123456789"
    secret: str = "cs_test_9876543210"
    host: str = "127.0.0.1"
    orders: list[dict] = field(default_factory=list)
    outage: bool = False
    requests: list[dict] = field(default_factory=list)
    #: What write-backs did: order id -> its status and notes (`PUT /orders/<id>`,
    #: `POST /orders/<id>/notes`, as the REST docs show them).
    statuses: dict[str, str] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.app = self._build()
        self._server = make_server(self.host, 0, self.app, threaded=True)
        self.url = f"http://{self.host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> FakeWooCommerce:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()

    def _build(self) -> Flask:
        app = Flask("fake-woocommerce")

        @app.get("/wp-json/wc/v3/orders")
        def list_orders():
            self.requests.append(dict(request.args))
            if self.outage:
                return "Service Unavailable", 503
            auth = request.authorization
            if auth is None or (auth.username, auth.password) != (self.key, self.secret):
                body = {
                    "code": "woocommerce_rest_cannot_view",
                    "message": "Sorry, you cannot list resources.",
                    "data": {"status": 401},
                }
                return jsonify(body), 401
            after = request.args.get("modified_after")
            found = [
                order
                for order in self.orders
                if after is None
                or datetime.fromisoformat(order["date_modified_gmt"])
                > datetime.fromisoformat(after)
            ]
            found.sort(key=lambda order: order["date_modified_gmt"])
            per_page = int(request.args.get("per_page", 10))
            page = int(request.args.get("page", 1))
            pages = max(1, math.ceil(len(found) / per_page))
            response = jsonify(found[(page - 1) * per_page : page * per_page])
            response.headers["X-WP-Total"] = str(len(found))
            response.headers["X-WP-TotalPages"] = str(pages)
            return response

        def authorised() -> bool:
            auth = request.authorization
            return auth is not None and (auth.username, auth.password) == (self.key, self.secret)

        @app.put("/wp-json/wc/v3/orders/<order_id>")
        def update_order(order_id: str):
            if self.outage:
                return "Service Unavailable", 503
            if not authorised():
                return jsonify(code="woocommerce_rest_cannot_edit", data={"status": 401}), 401
            status = (request.get_json() or {}).get("status")
            self.statuses[order_id] = status
            return jsonify(id=int(order_id), status=status)

        @app.post("/wp-json/wc/v3/orders/<order_id>/notes")
        def add_note(order_id: str):
            if self.outage:
                return "Service Unavailable", 503
            if not authorised():
                return jsonify(code="woocommerce_rest_cannot_create", data={"status": 401}), 401
            note = (request.get_json() or {}).get("note")
            self.notes.setdefault(order_id, []).append(note)
            return jsonify(id=len(self.notes[order_id]), note=note, customer_note=False), 201

        return app
