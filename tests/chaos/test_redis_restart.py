"""Redis stops in the middle of a send run and comes back empty on the same port: the
web keeps accepting orders (stored, their enqueue lost), the workers reconnect, the
sweeper re-enqueues every row Redis forgot, and each message is sent exactly once."""

from __future__ import annotations

import signal
import time

from tests.chaos import checks
from tests.chaos.system import Shop, eventually, order_event


def test_redis_restart_mid_send_loses_and_duplicates_nothing(make_system, redis_server, provider):
    provider.configure(latency=0.2)
    system = make_system(provider.url, SEND_BATCH_SIZE="10")
    shop = Shop(system.start_web_with_receipts(provider))
    workers = [system.start_worker(), system.start_worker()]

    shop.post([order_event("redis", i) for i in range(60)])
    eventually(lambda: len(provider.accepted_counts()) >= 10, 60, "the send run to be under way")
    redis_server.process.kill(signal.SIGKILL)  # everything in Redis is gone
    shop.post([order_event("redis", i) for i in range(60, 80)])  # stored; no job enqueued
    assert len(shop.accepted) == 80, shop.statuses
    time.sleep(3)  # an outage long enough for every process to notice
    redis_server.start()

    exited = [w.name for w in workers if not w.running]
    assert exited == [], f"{exited} exited when Redis went away instead of reconnecting"
    # No new order kicks the senders: only the sweeper can find what Redis forgot.
    checks.wait_until_all_sent_once(shop.message_ids, provider.accepted_counts, 90)

    shop.post([order_event("redis", i) for i in range(80, 100)])  # the web after Redis is back
    shop.redeliver()
    messages = shop.message_ids
    assert len(messages) == 100
    checks.wait_until_all_sent_once(messages, provider.accepted_counts, 90)
    assert checks.events_have_their_messages(shop.accepted) == []
    assert checks.settled(messages) == []
