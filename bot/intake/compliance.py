"""A shop platform's privacy requests (Shopify's mandatory compliance topics, §9.5):

- `customers/redact`: erase the customer (found by their number and by the orders the
  request names), keeping only the salted suppression, as `DELETE
  /admin/api/customers/<phone>` does;
- `customers/data_request`: the customer's export is ready (`GET
  /admin/api/customers/<phone>/export`); the shop's contact is told through the alert
  channels, since the shop owes the customer an answer;
- `shop/redact`: erase every customer of that shop's orders.

Each is stored once by its delivery id (a redelivery changes nothing, answers the same)
and audited with the suppression hash only, never the number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import redis

from bot.core import phones
from bot.core.audit import audit
from bot.core.models import Customer, Order, write_transaction
from bot.core.rows import first_delivery
from bot.delivery.providers.base import AccountNews, News, Severity
from bot.intake.sources.base import ComplianceRequest
from bot.observability import alerts
from bot.policy import privacy


@dataclass(frozen=True, slots=True)
class Done:
    """What a compliance request did: `customers` counts those erased or exported."""

    topic: str
    duplicate: bool
    customers: int

    def as_json(self) -> dict:
        return {"compliance": self.topic, "duplicate": self.duplicate, "customers": self.customers}


def take_compliance_request(
    request: ComplianceRequest, conn: redis.Redis, salt: str, region: str, now: datetime
) -> Done:
    with write_transaction():
        # It names a customer: nothing of it is kept, only that it came.
        if not first_delivery(request.source, request.dedupe_key, request.topic, now):
            return Done(request.topic, duplicate=True, customers=0)
        actor = f"{request.source}:{request.topic}"
        if request.topic == "shop/redact":
            keys = shop_customer_keys(request.source)
        else:
            keys = customer_keys(request, region)
        if request.topic == "customers/data_request":
            news = [data_request_news(request, key, now) for key in keys]
            for key in keys:
                audit(actor, "data_request", privacy.suppression_hash(key, salt), {}, now)
        else:
            news = []
            for key in keys:
                privacy.erase_customer(key, salt, actor, now)
    if news:
        alerts.record_account_news(conn, news, now)  # the next alert check tells the shop
    return Done(request.topic, duplicate=False, customers=len(keys))


def customer_keys(request: ComplianceRequest, region: str) -> list[str]:
    """The numbers (or BSUIDs) of the customers a request names: by its number, and by
    the customers of the orders it lists. A number nobody has is still a key: erasing it
    stores its suppression."""
    keys: list[str] = []
    number = phones.to_e164(request.phone, region) if request.phone else None
    if number:
        keys.append(number)
    if request.orders:
        owners = (
            Customer.select(Customer.phone, Customer.user_id)
            .join(Order, on=(Order.customer == Customer.id))
            .where((Order.source == request.source) & Order.external_id.in_(list(request.orders)))
        )
        for owner in owners:
            key = owner.phone or owner.user_id
            if key and key not in keys:
                keys.append(key)
    return keys


def shop_customer_keys(source: str) -> list[str]:
    owners = (
        Customer.select(Customer.phone, Customer.user_id)
        .join(Order, on=(Order.customer == Customer.id))
        .where(Order.source == source)
        .distinct()
    )
    return sorted(
        {owner.phone or owner.user_id for owner in owners if owner.phone or owner.user_id}
    )


def data_request_news(request: ComplianceRequest, key: str, now: datetime) -> AccountNews:
    # Alerts are logged and sent on: the number is masked, the shop knows the customer.
    text = (
        f"{request.source} data request {request.request_id or ''} from {request.shop_domain}"
        f" for customer {phones.mask(key)} (shop customer id {request.customer_id}): their"
        " export is ready, GET /admin/api/customers/<their number>/export; send it to them"
        " (Shopify expects an answer within 30 days)"
    )
    subject = f"data_request:{request.request_id or request.dedupe_key}:{phones.mask(key)}"
    return AccountNews(request.source, News.PROBLEM, subject, Severity.WARNING, text, now)
