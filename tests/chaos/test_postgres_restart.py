"""PostgreSQL stops while shops are posting orders and starts again: meanwhile the
webhooks of senders that redeliver (Shopify, the generic API's clients, Meta) answer
503, WooCommerce's deliveries (it never redelivers) are spooled, nothing is written
half (no event without its message, no message without its event), and once it is
back the spool is drained, each redelivered event is accepted exactly once and its
message sent once."""

from __future__ import annotations

import itertools
import json
import threading
from collections import Counter

import requests

from bot.core.models import OrderEvent
from tests.chaos import checks
from tests.chaos.system import (
    Delivery,
    Shop,
    eventually,
    order_event,
    shopify_order,
    woocommerce_order,
)
from tests.conftest import SECRETS
from tests.fakes.provider_server import meta_signature, status_webhook


def delivery(i: int) -> Delivery:
    kind = (shopify_order, order_event, woocommerce_order, order_event)[i % 4]
    return kind("pg", i)


def post_meta_receipt(web_url: str) -> int:
    """A signed Meta status webhook (a receipt for a message Dakiya does not know)."""
    status = {"id": "wamid.PGDOWN", "status": "delivered", "timestamp": "1795600000"}
    status["recipient_id"] = "919700000001"
    body = json.dumps(status_webhook([status])).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": meta_signature(SECRETS["meta_app_secret"], body),
    }
    url = f"{web_url}/webhooks/whatsapp/meta"
    return requests.post(url, data=body, headers=headers, timeout=15).status_code


def test_postgres_restart_during_ingest_answers_503_and_writes_nothing_half(
    make_system, provider, postgres
):
    provider.configure(latency=0.05)
    system = make_system(provider.url, database_url=postgres.url)
    shop = Shop(system.start_web_with_receipts(provider))
    system.start_worker()
    system.start_worker()

    # Shops post steadily, two at a time, until told to stop.
    posted: list[Delivery] = []
    enough = threading.Event()

    def post_steadily() -> None:
        for i in itertools.count(step=2):
            if enough.is_set():
                return
            pair = [delivery(i), delivery(i + 1)]
            posted.extend(pair)
            shop.post(pair, threads=2)

    def answered(status: int) -> int:
        return sum(1 for s in list(shop.statuses) if s == status)

    feeder = threading.Thread(target=post_steadily)
    feeder.start()
    try:
        eventually(lambda: answered(202) >= 30, 60, "orders to be accepted")
        postgres.stop("fast")  # every session is cut, mid-transaction or not
        eventually(lambda: answered(503) >= 20, 60, "webhooks to answer 503")
        assert post_meta_receipt(shop.web_url) == 503  # Meta redelivers later
        postgres.start()
        accepted_before = answered(202)
        eventually(lambda: answered(202) >= accepted_before + 30, 60, "ingest to recover")
    finally:
        enough.set()
        feeder.join()
    answers = Counter(shop.statuses)
    assert set(answers) <= {202, 503}, answers  # never a 500, never without an answer
    assert shop.spooled, "no WooCommerce delivery arrived while the database was down"
    assert post_meta_receipt(shop.web_url) == 200
    shop.redeliver()
    eventually(
        lambda: OrderEvent.select().count() == len(posted),
        60,
        "the spooled WooCommerce deliveries to be stored",
    )

    assert set(shop.post(posted)) == {200}  # every redelivery now a no-op with its ids
    assert len(shop.accepted) == len(posted) == OrderEvent.select().count()
    assert checks.events_have_their_messages(shop.accepted) == []
    messages = shop.message_ids
    checks.wait_until_all_sent_once(messages, provider.accepted_counts, 120)
    assert checks.settled(messages) == []
