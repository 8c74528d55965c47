"""PostgreSQL stops while shops are posting orders and starts again: meanwhile the
webhooks answer 503 (Shopify and the generic API's clients redeliver), nothing is
written half (no event without its message, no message without its event), and once
it is back each redelivered event is accepted exactly once and its message sent once."""

from __future__ import annotations

import itertools
import threading

from bot.models import OrderEvent
from tests.chaos import checks
from tests.chaos.system import Delivery, Shop, eventually, order_event, shopify_order


def delivery(i: int) -> Delivery:
    return shopify_order("pg", i) if i % 3 == 0 else order_event("pg", i)


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
        postgres.start()
        accepted_before = answered(202)
        eventually(lambda: answered(202) >= accepted_before + 30, 60, "ingest to recover")
    finally:
        enough.set()
        feeder.join()
    assert set(shop.statuses) <= {202, 503}, shop.statuses  # never a 500 or no answer
    shop.redeliver()

    assert set(shop.post(posted)) == {200}  # every redelivery now a no-op with its ids
    assert len(shop.accepted) == len(posted) == OrderEvent.select().count()
    assert checks.events_have_their_messages(shop.accepted) == []
    messages = shop.message_ids
    checks.wait_until_all_sent_once(messages, provider.accepted_counts, 120)
    assert checks.settled(messages) == []
