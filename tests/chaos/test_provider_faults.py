"""The provider misbehaves: a storm of 429s, 5xx, Meta's 130429, timeouts and dropped
connections, then health; or every answer slower than the client waits. Failed sends
are retried with backoff, ambiguous ones (timeouts, drops) are held until a receipt
reconciles them or the hold runs out, and in the end every message is sent once."""

from __future__ import annotations

import pytest

from bot.core.models import Message
from tests.chaos import checks
from tests.chaos.system import Shop, eventually, order_event


def attempts(outcome: str) -> str:
    return f'dakiya_send_attempts_total{{outcome="{outcome}",provider="meta"}}'


STORM = {"429": 0.25, "500": 0.15, "503": 0.1, "130429": 0.1, "timeout": 0.1, "drop": 0.05}


def test_error_storm_then_health_every_message_sent_once(make_system, provider):
    provider.configure(latency=0.05, errors=STORM, hold=3.0)  # a timeout: accepted at 3 s
    system = make_system(
        provider.url,
        PROVIDER_TIMEOUT_SECONDS="1.5",
        AMBIGUOUS_SEND_HOLD_SECONDS="8",  # a dropped send gets no receipt: resent after
    )
    shop = Shop(system.start_web_with_receipts(provider))
    system.start_worker()
    system.start_worker()
    shop.post([order_event("storm", i) for i in range(40)])
    assert len(shop.accepted) == 40

    def storm_served() -> bool:
        faults = {s.fault for s in provider.sends() if s.fault}
        return len(provider.sends()) >= 60 and {"429", "500", "timeout"} <= faults

    eventually(storm_served, 90, "the storm to hit the senders")
    provider.configure(errors={})

    messages = shop.message_ids
    checks.wait_until_all_sent_once(messages, provider.accepted_counts, 120)
    assert checks.events_have_their_messages(shop.accepted) == []
    assert checks.settled(messages) == []
    retried = [m.id for m in Message.select().where(Message.attempts > 1)]
    assert retried, "the storm made no message try again"
    refused = {s.message_id for s in provider.sends() if s.fault and s.fault != "timeout"}
    assert refused <= set(messages) and refused, "the storm refused no send"
    assert system.metric(attempts("retry")) > 0  # 429/5xx/130429: backed off, tried again
    assert system.metric(attempts("hold")) > 0  # timeouts and drops: held, not resent


@pytest.mark.parametrize(
    ("latency", "client_timeout"),
    [(2.0, "10"), (3.0, "1")],
    ids=["slow", "slower-than-the-client-waits"],
)
def test_slow_provider_every_message_sent_once(make_system, provider, latency, client_timeout):
    provider.configure(latency=latency)
    system = make_system(
        provider.url, PROVIDER_TIMEOUT_SECONDS=client_timeout, SEND_LEASE_SECONDS="20"
    )
    shop = Shop(system.start_web_with_receipts(provider))
    system.start_worker()
    system.start_worker()
    shop.post([order_event("slow", i) for i in range(20)])
    assert len(shop.accepted) == 20

    messages = shop.message_ids
    checks.wait_until_all_sent_once(messages, provider.accepted_counts, 150)
    assert checks.events_have_their_messages(shop.accepted) == []
    assert checks.settled(messages) == []
    held = system.metric(attempts("hold"))
    assert held > 0 if float(client_timeout) < latency else held == 0
