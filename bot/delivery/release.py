"""Releasing messages that wait: an admin's "send now", and the deferrals a change of the
policy settings undoes.

Either only makes a message due: the policy decides it again when it is claimed, by the
settings then in force, and may defer it once more (quiet hours that still apply, a cap
still reached). Nothing is sent that the policy would not send.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import reduce
from operator import or_

import redis
from rq import Queue

from bot.core import runtime
from bot.core.audit import audit
from bot.core.models import Message, State, write_transaction
from bot.delivery import dispatch
from bot.policy.policy import DEFERRED_BY

#: A message not sent yet: queued (perhaps waiting for a retry) or deferred.
WAITING = (State.QUEUED, State.DEFERRED)
#: Deferrals released by a settings change fall due this long after it: by then every
#: process has re-read the settings (runtime.REFRESH_SECONDS), so none decides them by
#: the old ones and defers them to the old time again.
SETTLE = timedelta(seconds=runtime.REFRESH_SECONDS + 1)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() + "Z" if moment else None


def send_now(message_id: int, actor: str, queues: dict[str, Queue], now: datetime) -> bool:
    """An admin's "send now": a waiting message becomes due at `now` and the sender is
    kicked; audited as `actor`. False (nothing written) when it is being sent or settled."""
    with write_transaction():
        message = Message.get_or_none(Message.id == message_id)
        released = (
            Message.update(next_attempt_at=now, updated_at=now)
            .where((Message.id == message_id) & Message.state.in_(WAITING))
            .execute()
        )
        if released:
            before = {
                "state": message.state,
                "reason": message.reason,
                "next_attempt_at": _iso(message.next_attempt_at),
            }
            audit(actor, "send_now", str(message_id), {"before": before, "after": "due now"}, now)
    if released:
        dispatch.enqueue_sends(queues, [(message_id, message.queue)])
    return released == 1


@dataclass(frozen=True, slots=True)
class Released:
    """Deferred messages made due by a settings change: how many, when, on which queues."""

    count: int = 0
    at: datetime | None = None
    queues: frozenset[str] = field(default_factory=frozenset)


def release_deferred(changed: Iterable[str], now: datetime) -> Released:
    """Make due (at now + SETTLE) the deferred messages whose deferral one of the `changed`
    settings decides (policy.DEFERRED_BY), in the caller's transaction; `wake` them after
    it commits."""
    conditions = []
    for name in changed:
        if name not in DEFERRED_BY:
            continue
        reason, category = DEFERRED_BY[name]
        condition = Message.reason == reason
        conditions.append(
            condition if category is None else condition & (Message.category == category)
        )
    if not conditions:
        return Released()
    at = now + SETTLE
    waiting = (
        (Message.state == State.DEFERRED) & (Message.next_attempt_at > at) & reduce(or_, conditions)
    )
    queues = frozenset(m.queue for m in Message.select(Message.queue).where(waiting).distinct())
    count = Message.update(next_attempt_at=at, updated_at=now).where(waiting).execute()
    return Released(count, at, queues)


def wake(queues: dict[str, Queue], released: Released) -> None:
    """Have the sender run when the released messages fall due (the sweeper does it too,
    should Redis be unreachable now)."""
    if not released.count:
        return
    try:
        for name in released.queues:
            dispatch.kick_at(queues, name, released.at)
    except redis.RedisError:
        pass  # the rows are due in the database: the sweeper kicks their queues
