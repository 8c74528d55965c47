"""The checks every fault scenario ends with, read straight from the database and the
fake provider's own count of requests per message (`dakiya:<id>` callback data).

Each check returns a list of problems (empty: it holds), so a failing scenario names
every message at fault at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from bot.core.models import Message, OrderEvent, State

SENT_STATES = frozenset({State.SENT, State.DELIVERED, State.READ})
FINAL_STATES = SENT_STATES | {State.FAILED, State.SUPPRESSED}
RETRYABLE_STATES = frozenset({State.QUEUED, State.DEFERRED})


def events_have_their_messages(accepted: Mapping[int, list[int]]) -> list[str]:
    """Every event a webhook accepted (its id -> the message ids it answered) is stored
    with exactly those messages, and no message or event is stored half."""
    problems = []
    stored = {e.id for e in OrderEvent.select(OrderEvent.id)}
    by_event: dict[int | None, set[int]] = {}
    for m in Message.select(Message.id, Message.order_event):
        by_event.setdefault(m.order_event_id, set()).add(m.id)
    for event_id, message_ids in sorted(accepted.items()):
        if event_id not in stored:
            problems.append(f"accepted event {event_id} is not stored")
        elif not message_ids:
            problems.append(f"accepted event {event_id} was answered without messages")
        elif by_event.get(event_id, set()) != set(message_ids):
            problems.append(
                f"event {event_id}: answered messages {sorted(message_ids)}, "
                f"stored {sorted(by_event.get(event_id, set()))}"
            )
    for event_id in sorted(stored - set(by_event)):
        problems.append(f"event {event_id} is stored without any message")
    for event_id in sorted(set(by_event) - stored - {None}):
        problems.append(f"messages {sorted(by_event[event_id])} belong to no stored event")
    return problems


def sent_at_most_once(sends: Mapping[int, int]) -> list[str]:
    """No message reached the provider twice (`sends`: message id -> accepted requests)."""
    return [f"message {mid} was sent {n} times" for mid, n in sorted(sends.items()) if n > 1]


def settled(message_ids: list[int]) -> list[str]:
    """Every message is final, or waiting to be retried at a known time."""
    problems = []
    for m in Message.select().where(Message.id.in_(message_ids)):
        state = State(m.state)
        if state in FINAL_STATES:
            continue
        if state in RETRYABLE_STATES and m.next_attempt_at is not None:
            continue
        problems.append(f"message {m.id} is {state} (next attempt {m.next_attempt_at})")
    return problems


def all_sent_once(message_ids: list[int], sends: Mapping[int, int]) -> list[str]:
    """Every message went out exactly once and its row says so."""
    states = {m.id: State(m.state) for m in Message.select().where(Message.id.in_(message_ids))}
    problems = [f"message {mid} is missing" for mid in message_ids if mid not in states]
    for mid, state in sorted(states.items()):
        if state not in SENT_STATES:
            problems.append(f"message {mid} is {state}")
        if sends.get(mid, 0) != 1:
            problems.append(f"message {mid} reached the provider {sends.get(mid, 0)} times")
    return problems


def wait_until_all_sent_once(
    message_ids: list[int], accepted_counts: Callable[[], Mapping[int, int]], seconds: float
) -> None:
    """Poll until every message went out exactly once; fail at once on a duplicate, or
    at the deadline naming what is still missing (a liveness wait, not a timing check)."""
    deadline = time.monotonic() + seconds
    while True:
        sends = accepted_counts()
        duplicates = sent_at_most_once(sends)
        assert duplicates == [], duplicates
        problems = all_sent_once(message_ids, sends)
        if not problems:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not all sent after {seconds} s: {problems[:20]}")
        time.sleep(0.25)
