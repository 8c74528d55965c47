"""A worker is SIGKILLed while a send is in flight at the provider: the provider still
accepts that send and its receipt (carrying `dakiya:<id>`) reconciles the message; the
rows the dead worker had claimed but not sent are retried once their lease runs out by
the workers started after it. Everything is sent, nothing twice."""

from __future__ import annotations

from bot.models import Message, State
from tests.chaos import checks
from tests.chaos.system import Shop, eventually, order_event


def test_worker_killed_mid_send_every_message_sent_once(make_system, provider):
    provider.configure(latency=0.5)  # long enough to kill a worker with sends in flight
    # Small batches: when the worker dies some sends are in flight, some rows claimed
    # but not yet sent, the rest still queued.
    system = make_system(provider.url, SEND_LEASE_SECONDS="6", SEND_BATCH_SIZE="10")
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
    doomed.kill()
    in_flight_at_kill = provider.in_flight
    left_sending = Message.select().where(Message.state == State.SENDING).count()
    system.start_worker()
    system.start_worker()

    messages = shop.message_ids
    checks.wait_until_all_sent_once(messages, provider.accepted_counts, 120)
    assert in_flight_at_kill > 0 and left_sending > 0  # the crash this test is about
    assert checks.events_have_their_messages(shop.accepted) == []
    assert checks.sent_at_most_once(provider.accepted_counts()) == []
    assert checks.settled(messages) == []
    assert checks.all_sent_once(messages, provider.accepted_counts()) == []
