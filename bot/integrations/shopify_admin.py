"""Shopify's GraphQL Admin API, as much as the COD round trip needs (PROVIDERS.md §9.5):

- the access token of a Dev Dashboard app from the client-credentials grant (`POST
  /admin/oauth/access_token`, `grant_type=client_credentials`), valid 24 hours, kept in
  Redis and fetched again five minutes before it expires or when Shopify answers 401;
- `tagsAdd` on the order, its `note` read and appended to (`orderUpdate`), and, when the
  shop wants it, `orderCancel`.

Answers are classified for the write-back job: `Retry` (a network error, 5xx, 429 or a
`THROTTLED` GraphQL error: Shopify's leaky bucket, with its restore rate in
`extensions.cost`), `Refused` (`userErrors`, a 4xx other than 401/429: retrying changes
nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
import requests

from bot.core.config import Settings
from bot.integrations.shop_errors import Refused, Retry, classify

TOKEN_KEY = "dakiya:shopify:token"
EARLY = 300  # seconds before its expiry a token is fetched again
TIMEOUT = (5, 30)


@dataclass(frozen=True, slots=True)
class ShopifyAdmin:
    settings: Settings
    conn: redis.Redis
    session: requests.Session

    @property
    def base(self) -> str:
        s = self.settings
        return (s.shopify_admin_api_base_url or f"https://{s.shopify_shop_domain}").rstrip("/")

    def token(self, fresh: bool = False) -> str:
        cached = None if fresh else self.conn.get(TOKEN_KEY)
        if cached:
            return cached.decode()
        body = {
            "grant_type": "client_credentials",
            "client_id": self.settings.shopify_client_id,
            "client_secret": self.settings.shopify_client_secret,
        }
        answer = self._post(f"{self.base}/admin/oauth/access_token", body, {})
        token, expires = answer.get("access_token"), answer.get("expires_in")
        if not isinstance(token, str) or not token:
            raise Refused(f"the token grant answered no access_token: {str(answer)[:200]}")
        ttl = int(expires) - EARLY if isinstance(expires, int) and expires > EARLY else 60
        self.conn.set(TOKEN_KEY, token, ex=ttl)
        return token

    def graphql(self, query: str, variables: dict) -> dict:
        """`data` of one GraphQL call, the token renewed once if Shopify says 401."""
        url = f"{self.base}/admin/api/{self.settings.shopify_api_version}/graphql.json"
        for fresh in (False, True):
            headers = {"X-Shopify-Access-Token": self.token(fresh)}
            try:
                return self._graphql(url, query, variables, headers)
            except ExpiredToken:
                continue
        raise Retry("Shopify refused a fresh access token (401)")

    def _graphql(self, url: str, query: str, variables: dict, headers: dict) -> dict:
        answer = self._post(url, {"query": query, "variables": variables}, headers)
        errors = answer.get("errors") or []
        if any((e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors):
            raise Retry("THROTTLED: Shopify's request budget is spent for now")
        if errors:
            raise Refused(f"GraphQL errors: {str(errors)[:300]}")
        return answer.get("data") or {}

    def _post(self, url: str, body: dict, headers: dict) -> dict:
        try:
            response = self.session.post(url, json=body, headers=headers, timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise Retry(f"POST {url}: {exc}") from exc
        if response.status_code == 401 and headers:
            raise ExpiredToken()
        classify(response, f"POST {url}")
        try:
            answer = response.json()
        except ValueError as exc:
            raise Retry(f"POST {url}: not JSON") from exc
        return answer if isinstance(answer, dict) else {}


class ExpiredToken(Exception):
    pass


TAGS_ADD = """mutation tagsAdd($id: ID!, $tags: [String!]!) {
  tagsAdd(id: $id, tags: $tags) { node { id } userErrors { field message } }
}"""
ORDER_NOTE = """query orderNote($id: ID!) { order(id: $id) { id note } }"""
ORDER_UPDATE = """mutation orderUpdate($input: OrderInput!) {
  orderUpdate(input: $input) { order { id } userErrors { field message } }
}"""
ORDER_CANCEL = """mutation orderCancel($orderId: ID!) {
  orderCancel(orderId: $orderId, reason: CUSTOMER, refund: false, restock: true,
              notifyCustomer: false) {
    job { id } orderCancelUserErrors { field message code }
  }
}"""


def order_gid(external_id: str) -> str:
    return f"gid://shopify/Order/{external_id}"


def user_errors(data: dict, field: str, errors: str = "userErrors") -> None:
    found = (data.get(field) or {}).get(errors) or []
    if found:
        raise Refused(f"{field}: {str(found)[:300]}")


def write_cod_answer(admin: ShopifyAdmin, external_id: str, answer: str, note: str) -> None:
    """Tag the order, append `note` to its note, and cancel it when the answer is
    cancelled and the shop asked for it."""
    s, gid = admin.settings, order_gid(external_id)
    tag = {
        "confirmed": s.shopify_cod_confirmed_tag,
        "cancelled": s.shopify_cod_cancelled_tag,
        "unanswered": s.shopify_cod_unanswered_tag,
    }[answer]
    user_errors(admin.graphql(TAGS_ADD, {"id": gid, "tags": [tag]}), "tagsAdd")
    current = ((admin.graphql(ORDER_NOTE, {"id": gid}).get("order") or {}).get("note")) or ""
    if note not in current:  # a retried write-back never appends twice
        combined = f"{current}\n{note}" if current else note
        data = admin.graphql(ORDER_UPDATE, {"input": {"id": gid, "note": combined}})
        user_errors(data, "orderUpdate")
    cancel = (answer == "cancelled" and s.shopify_cod_cancel_orders) or (
        answer == "unanswered" and s.shopify_cod_cancel_unanswered
    )
    if cancel:
        data = admin.graphql(ORDER_CANCEL, {"orderId": gid})
        user_errors(data, "orderCancel", "orderCancelUserErrors")
