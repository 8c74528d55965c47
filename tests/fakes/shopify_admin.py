"""A local fake of Shopify's Admin API for one shop, on a real socket, as Shopify's
documentation shows it (PROVIDERS.md §9.5):

- `POST /admin/oauth/access_token` with `grant_type=client_credentials`: `{access_token,
  scope, expires_in: 86399}`; a wrong client secret is a 400 `invalid_client`;
- `POST /admin/api/<version>/graphql.json` with `X-Shopify-Access-Token`: 401 for an
  unknown or expired token; `tagsAdd`, `order { note }`, `orderUpdate`, `orderCancel`
  on the orders it holds, with `userErrors` for an unknown order; `throttle(n)` answers
  the next n calls with the `THROTTLED` error and `extensions.cost.throttleStatus`.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field

from flask import Flask, jsonify, request
from werkzeug.serving import make_server


@dataclass
class ShopOrder:
    tags: list[str] = field(default_factory=list)
    note: str = ""
    cancelled: bool = False


@dataclass
class FakeShopifyAdmin:
    client_id: str = "dev-app-client-id"
    client_secret: str = "dev-app-client-secret"
    host: str = "127.0.0.1"
    orders: dict[str, ShopOrder] = field(default_factory=dict)
    grants: int = 0
    calls: list[str] = field(default_factory=list)
    throttled: int = 0
    #: `make fake-shops`: every order exists (made on first touch), and calls are printed.
    standalone: bool = False
    port: int = 0

    def __post_init__(self) -> None:
        self._tokens: set[str] = set()
        self._ids = itertools.count(1)
        self.app = self._build()
        self._server = make_server(self.host, self.port, self.app, threaded=True)
        self.url = f"http://{self.host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> FakeShopifyAdmin:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()

    def reset(self) -> None:
        self.orders.clear()
        self.calls.clear()
        self._tokens.clear()
        self.grants = self.throttled = 0

    def expire_tokens(self) -> None:
        """Every token handed out so far stops working (their 24 hours are up)."""
        self._tokens.clear()

    def throttle(self, calls: int) -> None:
        self.throttled = calls

    def _build(self) -> Flask:
        app = Flask("fake-shopify-admin")

        @app.post("/admin/oauth/access_token")
        def access_token():
            body = request.get_json(silent=True) or request.form
            if body.get("grant_type") != "client_credentials":
                return jsonify(error="unsupported_grant_type"), 400
            if (body.get("client_id"), body.get("client_secret")) != (
                self.client_id,
                self.client_secret,
            ):
                return jsonify(error="invalid_client"), 400
            self.grants += 1
            token = f"shpat_fake_{next(self._ids)}"
            self._tokens.add(token)
            return jsonify(access_token=token, scope="write_orders", expires_in=86399)

        @app.post("/admin/api/<version>/graphql.json")
        def graphql(version: str):
            if request.headers.get("X-Shopify-Access-Token") not in self._tokens:
                message = (
                    "[API] Invalid API key or access token (unrecognized login or wrong password)"
                )
                return jsonify(errors=message), 401
            body = request.get_json()
            query, variables = body["query"], body.get("variables") or {}
            name = query.split("(", 1)[0].split()[-1]
            self.calls.append(name)
            if self.throttled:
                self.throttled -= 1
                return jsonify(
                    errors=[{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                    extensions={
                        "cost": {
                            "requestedQueryCost": 10,
                            "actualQueryCost": None,
                            "throttleStatus": {
                                "maximumAvailable": 2000.0,
                                "currentlyAvailable": 0,
                                "restoreRate": 100.0,
                            },
                        }
                    },
                )
            return jsonify(data=self._answer(name, variables))

        return app

    def _answer(self, name: str, variables: dict) -> dict:
        gid = (
            variables.get("id")
            or variables.get("orderId")
            or (variables.get("input") or {}).get("id")
        )
        if self.standalone and gid and gid not in self.orders:
            self.orders[gid] = ShopOrder()
        order = self.orders.get(gid)
        missing = [{"field": ["id"], "message": "Order does not exist"}]
        if name == "orderNote":
            return {"order": {"id": gid, "note": order.note} if order else None}
        if name == "tagsAdd":
            if order is None:
                return {"tagsAdd": {"node": None, "userErrors": missing}}
            order.tags += [t for t in variables["tags"] if t not in order.tags]
            return {"tagsAdd": {"node": {"id": gid}, "userErrors": []}}
        if name == "orderUpdate":
            if order is None:
                return {"orderUpdate": {"order": None, "userErrors": missing}}
            order.note = variables["input"].get("note", order.note)
            return {"orderUpdate": {"order": {"id": gid}, "userErrors": []}}
        if name == "orderCancel":
            if order is None:
                return {"orderCancel": {"job": None, "orderCancelUserErrors": missing}}
            order.cancelled = True
            return {
                "orderCancel": {"job": {"id": "gid://shopify/Job/1"}, "orderCancelUserErrors": []}
            }
        return {}


def main() -> None:
    """`make fake-shops`: this fake on 127.0.0.1:5081, printing what Dakiya writes back,
    to try the COD round trip with `make run` (README "Cash on delivery")."""
    import argparse
    import time

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=5081)
    port = parser.parse_args().port
    fake = FakeShopifyAdmin(standalone=True, port=port).start()
    print(f"fake Shopify Admin API on {fake.url}; in .env:")  # noqa: T201
    print(f"  SHOPIFY_ADMIN_API_BASE_URL={fake.url}")  # noqa: T201
    print(f"  SHOPIFY_CLIENT_ID={fake.client_id}")  # noqa: T201
    print(f"  SHOPIFY_CLIENT_SECRET={fake.client_secret}", flush=True)  # noqa: T201
    seen = 0
    while True:
        time.sleep(1)
        for call in fake.calls[seen:]:
            orders = {gid: vars(order) for gid, order in fake.orders.items()}
            print("  ", call, orders, flush=True)  # noqa: T201
        seen = len(fake.calls)


if __name__ == "__main__":
    main()
