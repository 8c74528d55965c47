"""Claiming messages for sending: the conditional UPDATE that is the lock.

A message can be taken when it is queued or deferred and due, or when a previous
worker's lease on it ran out (the worker died mid-send, or an ambiguous send got no
receipt in time). Claiming sets state `sending`, a lease and one more attempt in a
single UPDATE ... RETURNING, so no two workers ever both win a message, whether they
ask for it by id or for "the next batch that is due".
"""

from __future__ import annotations

from datetime import datetime, timedelta

from peewee import Cast, PostgresqlDatabase, Value, fn

from bot.core.models import (
    CALLBACK_PREFIX,
    InboxEntry,
    Message,
    State,
    StatusEvent,
    db,
    write_transaction,
)

#: Send queues in priority order: order updates and replies before campaigns.
SEND_QUEUES = ("orders", "campaigns")


def _due(now: datetime):
    return Message.next_attempt_at.is_null() | (Message.next_attempt_at <= now)


def _lease_expired(now: datetime):
    """`sending` past its lease, and no receipt for it waiting to be applied: a receipt
    (matched by our callback data) proves the provider took the message, so it must be
    applied, not the message sent again. Nor while a webhook delivery kept before the
    lease ran out still waits in the inbox (bot/intake/inbox.py): it may be that receipt,
    not readable until a worker takes it in (the whole fleet down, the receipts kept)."""
    receipt = StatusEvent.select(StatusEvent.id).where(
        StatusEvent.callback_data == Value(CALLBACK_PREFIX).concat(Cast(Message.id, "TEXT"))
    )
    kept_before = InboxEntry.select(InboxEntry.id).where(
        InboxEntry.received_at < Message.lease_until
    )
    return (
        (Message.state == State.SENDING)
        & (Message.lease_until < now)
        & ~fn.EXISTS(receipt)
        & ~fn.EXISTS(kept_before)
    )


def _claimable(now: datetime):
    return (Message.state.in_([State.QUEUED, State.DEFERRED]) & _due(now)) | _lease_expired(now)


def claim_ids(ids: list[int], now: datetime, lease_seconds: int) -> list[Message]:
    """Take those of `ids` that are claimable; the claimed rows as now stored, in the
    order of `ids`."""
    if not ids:
        return []
    query = (
        Message.update(
            state=State.SENDING,
            lease_until=now + timedelta(seconds=lease_seconds),
            attempts=Message.attempts + 1,
            updated_at=now,
        )
        .where(Message.id.in_(ids) & _claimable(now))
        .returning(Message)
    )
    order = {message_id: i for i, message_id in enumerate(ids)}
    return sorted(query.execute(), key=lambda m: order[m.id])


def claim_message(message_id: int, now: datetime, lease_seconds: int) -> bool:
    """Take one message by id; True for exactly one caller."""
    return bool(claim_ids([message_id], now, lease_seconds))


def claim_due(
    now: datetime, limit: int, lease_seconds: int, queues: tuple[str, ...] = SEND_QUEUES
) -> list[Message]:
    """Take up to `limit` due messages of `queues`, order updates first, oldest first."""
    with write_transaction():
        return claim_ids(due_ids(now, limit, queues), now, lease_seconds)


def claimable_by(queue: str) -> tuple[str, ...]:
    """The message queues a send job on `queue` claims from: its own and those before
    it. A campaign's job helps with order updates; an order-update job never takes a
    campaign's messages, so it ends once they are sent instead of holding the queue
    every worker serves first (customers' STOPs wait there)."""
    return SEND_QUEUES[: SEND_QUEUES.index(queue) + 1] if queue in SEND_QUEUES else SEND_QUEUES


def due_ids(now: datetime, limit: int, queues: tuple[str, ...] = SEND_QUEUES) -> list[int]:
    """Ids of up to `limit` claimable messages. On PostgreSQL the rows are locked with
    SKIP LOCKED, so concurrent workers each get a different batch instead of waiting."""
    wanted = [
        (Message.queue == queue) & (Message.state == state) & _due(now)
        for queue in queues
        for state in (State.QUEUED, State.DEFERRED)
    ]
    wanted.append(_lease_expired(now) & Message.queue.in_(queues))
    ids: list[int] = []
    for condition in wanted:
        if len(ids) >= limit:
            break
        query = Message.select(Message.id).where(condition).order_by(Message.id)
        query = query.limit(limit - len(ids))
        if isinstance(db.obj, PostgresqlDatabase):
            query = query.for_update("FOR UPDATE SKIP LOCKED")
        ids += [row.id for row in query]
    return ids


def find_stranded_messages(
    now: datetime, grace_seconds: int, limit: int = 5000
) -> list[tuple[int, str]]:
    """(id, queue) of messages that should be in a queue but may not be: their trigger was
    lost or their worker killed. The sweeper kicks the senders of their queues.

    - queued or deferred, and due for longer than `grace_seconds`;
    - `sending` past its lease with no receipt waiting (what `claim_due` would take).
    """
    grace = now - timedelta(seconds=grace_seconds)
    due = (Message.next_attempt_at.is_null() & (Message.updated_at < grace)) | (
        Message.next_attempt_at < grace
    )
    query = (
        Message.select(Message.id, Message.queue)
        .where((Message.state.in_([State.QUEUED, State.DEFERRED]) & due) | _lease_expired(now))
        .order_by(Message.id)
        .limit(limit)
    )
    return [(m.id, m.queue) for m in query]
