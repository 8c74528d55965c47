"""A worker is SIGKILLed while sends are in flight at the provider: the provider still
accepts them and their receipts (carrying `dakiya:<id>`) reconcile the messages; the
rows the dead worker had claimed but not sent are retried once their lease runs out by
the workers started after it, at once or only after the lease ran out (the whole fleet
down for a while, its receipts stored meanwhile). Everything is sent, nothing twice."""

from __future__ import annotations

import time

import pytest

from bot.core.models import Message, State
from tests.chaos import checks
from tests.chaos.system import Shop, eventually, order_event

LEASE_SECONDS = 6


@pytest.mark.parametrize(
    "down_for", [0, LEASE_SECONDS + 2], ids=["replaced-at-once", "after-lease"]
)
def test_worker_killed_mid_send_every_message_sent_once(make_system, provider, down_for):
    provider.configure(latency=1.0)  # long enough to kill a worker with sends in flight
    # Small batches: when the worker dies some sends are in flight, some rows claimed
    # but not yet sent, the rest still queued.
    system = make_system(provider.url, SEND_LEASE_SECONDS=str(LEASE_SECONDS), SEND_BATCH_SIZE="10")
    shop = Shop(system.start_web_with_receipts(provider))
    doomed = system.start_worker()
    shop.post([order_event("kill", i) for i in range(60)])
    assert len(shop.accepted) == 60

    eventually(
        lambda: provider.in_flight > 0 and len(provider.accepted_counts()) >= 10,
        60,
        "the worker to have sends in flight",
        every=0.02,
    )
    killed_at = time.time()
    doomed.kill()
    left_sending = Message.select().where(Message.state == State.SENDING).count()
    time.sleep(down_for)  # no worker at all: receipts are stored, nobody applies them
    system.start_worker()
    system.start_worker()

    messages = shop.message_ids
    checks.wait_until_all_sent_once(messages, provider.accepted_counts, 120)
    in_flight_at_kill = [
        s.message_id for s in provider.sends() if s.arrived < killed_at < (s.answered or 0)
    ]
    assert in_flight_at_kill and left_sending  # the crash this test is about
    assert checks.events_have_their_messages(shop.accepted) == []
    assert checks.settled(messages) == []
