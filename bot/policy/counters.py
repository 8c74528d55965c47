"""What was already sent to whom: the policy's counters, kept in Redis and rebuilt from
the database (the truth) when Redis has lost them.

Per customer, a sorted set of their recent sends (member "<message id>:<category>",
score = send time) gives daily and weekly caps and the pair-rate gap; one sorted set of
customers reached outside a service window gives the messaging tier. Decisions for one
customer are serialised by a short Redis lock, so concurrent workers cannot both take
the last slot of a cap. Everything works on a batch: a few pipelined round trips and
one or two queries whatever the batch size.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import redis
from redis.lock import Lock

from bot.core.config_rules import Rules
from bot.core.models import Message, State
from bot.policy.policy import WEEK, Counters, local_midnight

HISTORY = "dakiya:sent:{customer_id}"
TIER = "dakiya:tier"
LOCK = "dakiya:lock:customer:{customer_id}"
LOCK_SECONDS = 30
KEEP = timedelta(days=8)
SENT_STATES = (State.SENDING, State.SENT, State.DELIVERED, State.READ)

# Take a tier slot for a customer unless the tier is full; a customer already counted
# in the moving 24 hours never needs a second slot. Atomic, so workers cannot overfill.
_TIER_SCRIPT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  return 1
end
if tonumber(ARGV[4]) >= 0 and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
"""


def _epoch(moment: datetime) -> float:
    return moment.replace(tzinfo=UTC).timestamp()


def _moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)


def _member(message: Message) -> str:
    return f"{message.id}:{message.category}"


@dataclasses.dataclass(frozen=True)
class CustomerLocks:
    """The customer locks one batch holds, all under one token."""

    token: str
    customer_ids: frozenset[int]


class SendLedger:
    def __init__(self, conn: redis.Redis) -> None:
        self.conn = conn
        self._take_tier_slot = conn.register_script(_TIER_SCRIPT)
        # redis-py's own compare-and-delete, so these locks are plain `redis.lock.Lock`s.
        self._release = conn.register_script(Lock.LUA_RELEASE_SCRIPT)

    def lock_customers(self, customer_ids: Iterable[int]) -> CustomerLocks:
        """Take the decision lock of each customer that no other worker holds."""
        ids = list(dict.fromkeys(customer_ids))
        token = uuid.uuid4().hex
        pipe = self.conn.pipeline(transaction=False)
        for customer_id in ids:
            pipe.set(LOCK.format(customer_id=customer_id), token, nx=True, ex=LOCK_SECONDS)
        taken = pipe.execute() if ids else []
        return CustomerLocks(token, frozenset(i for i, ok in zip(ids, taken, strict=True) if ok))

    def unlock_customers(self, locks: CustomerLocks) -> None:
        """Release what `lock_customers` took (a lock that expired meanwhile is left)."""
        pipe = self.conn.pipeline(transaction=False)
        for customer_id in locks.customer_ids:
            self._release(
                keys=[LOCK.format(customer_id=customer_id)], args=[locks.token], client=pipe
            )
        pipe.execute()

    def gather(
        self, batch: list[tuple[Message, str]], now: datetime, rules: Rules
    ) -> dict[int, Counters]:
        """The counters `decide` needs, per message id, for (message, customer time zone)
        pairs of distinct customers."""
        if not batch:
            return {}
        keys = [HISTORY.format(customer_id=m.customer_id) for m, _ in batch]
        pipe = self.conn.pipeline(transaction=False)
        for key in keys:
            pipe.exists(key)
        missing = [
            m.customer_id
            for (m, _), exists in zip(batch, pipe.execute(), strict=True)
            if not exists
        ]
        if missing:
            self._rebuild_histories(missing, now)
        for key in keys:
            pipe.zrangebyscore(key, _epoch(now - KEEP), "+inf", withscores=True)
        histories = pipe.execute()
        midnight = {tz: local_midnight(now, tz) for tz in {tz for _, tz in batch}}
        counters = {
            m.id: count_history(entries, m, midnight[tz], now - WEEK)
            for (m, tz), entries in zip(batch, histories, strict=True)
        }
        if rules.tier_limit is None:
            return counters  # no tier to count against: spare the tier's Redis calls
        pipe.zremrangebyscore(TIER, "-inf", _epoch(now - timedelta(hours=24)))
        pipe.zrange(TIER, 0, 0, withscores=True)
        pipe.zcard(TIER)
        for m, _ in batch:
            pipe.zscore(TIER, m.customer_id)
        _, first, used, *scores = pipe.execute()
        frees_at = _moment(first[0][1]) if first else None
        return {
            m.id: dataclasses.replace(
                counters[m.id],
                tier_used=used,
                tier_has_customer=score is not None,
                tier_frees_at=frees_at,
            )
            for (m, _), score in zip(batch, scores, strict=True)
        }

    def take_tier_slot(self, customer_id: int, now: datetime, limit: int | None) -> bool:
        cutoff = _epoch(now - timedelta(hours=24))
        limit_arg = -1 if limit is None else limit
        return bool(
            self._take_tier_slot(keys=[TIER], args=[customer_id, _epoch(now), cutoff, limit_arg])
        )

    def record(self, messages: list[Message], now: datetime) -> None:
        """Count the sends before they happen: a concurrent decision already sees them."""
        pipe = self.conn.pipeline(transaction=False)
        for message in messages:
            key = HISTORY.format(customer_id=message.customer_id)
            pipe.zadd(key, {_member(message): _epoch(now)})
            pipe.zremrangebyscore(key, "-inf", _epoch(now - KEEP))
            pipe.expire(key, int(KEEP.total_seconds()))
        pipe.execute()

    def forget(self, messages: list[Message]) -> None:
        """Un-count sends that did not happen (rate-limited, rejected, retried later)."""
        pipe = self.conn.pipeline(transaction=False)
        for message in messages:
            pipe.zrem(HISTORY.format(customer_id=message.customer_id), _member(message))
        pipe.execute()

    def _rebuild_histories(self, customer_ids: list[int], now: datetime) -> None:
        """Redis lost these histories (or never had them): the database's sends are the truth."""
        sends = Message.select(
            Message.id, Message.customer, Message.category, Message.sent_at
        ).where(
            Message.customer.in_(customer_ids)
            & Message.state.in_(SENT_STATES)
            & (Message.sent_at >= now - KEEP)
        )
        entries: dict[int, dict[str, float]] = {}
        for m in sends:
            entries.setdefault(m.customer_id, {})[_member(m)] = _epoch(m.sent_at)
        pipe = self.conn.pipeline(transaction=False)
        for customer_id, members in entries.items():
            key = HISTORY.format(customer_id=customer_id)
            pipe.zadd(key, members)
            pipe.expire(key, int(KEEP.total_seconds()))
        pipe.execute()


def forget_histories(conn: redis.Redis, customer_ids: list[int]) -> None:
    """Drop these customers' send histories (a merge moved sends between them): the next
    decision for each rebuilds its history from the database."""
    conn.delete(*(HISTORY.format(customer_id=i) for i in customer_ids))


def count_history(
    entries: list[tuple[bytes, float]], message: Message, midnight: datetime, week_ago: datetime
) -> Counters:
    """Today's and this week's sends of the message's category, and the last send of any,
    from a customer's history (the message's own earlier attempt excluded)."""
    own = f"{message.id}:".encode()
    suffix = f":{message.category}".encode()
    today = week = 0
    oldest = last = None
    for member, score in entries:
        if member.startswith(own):
            continue  # this very message (a retry after a failed attempt)
        sent_at = _moment(score)
        last = max(last, sent_at) if last else sent_at
        if not member.endswith(suffix):
            continue
        if sent_at >= week_ago:
            week += 1
            oldest = min(oldest, sent_at) if oldest else sent_at
        if sent_at >= midnight:
            today += 1
    return Counters(
        sent_today=today, sent_this_week=week, oldest_this_week=oldest, last_sent_at=last
    )


def find_duplicates(
    messages: list[Message],
    now: datetime,
    window: timedelta,
    batch_ids: list[int],
    going: list[Message],
) -> set[int]:
    """Ids of the messages whose same template with the same parameters already went (or
    is going) to the same customer within `window`: one query for the batch. Messages of
    the batch (`batch_ids`) count only once decided to go (`going`)."""
    candidates = [m for m in messages if m.template_name is not None and m.customer_id]
    if not window or not candidates:
        return set()
    others = Message.select(
        Message.customer, Message.template_name, Message.language, Message.params
    ).where(
        Message.customer.in_({m.customer_id for m in candidates})
        & Message.template_name.in_({m.template_name for m in candidates})
        & Message.id.not_in(batch_ids)
        & (
            (Message.state == State.SENDING)
            | (Message.state.in_(SENT_STATES) & (Message.sent_at >= now - window))
        )
    )
    seen: dict[tuple, list] = {}
    for other in [*others, *going]:
        seen.setdefault((other.customer_id, other.template_name, other.language), []).append(
            other.params
        )
    return {
        m.id
        for m in candidates
        if m.params in seen.get((m.customer_id, m.template_name, m.language), ())
    }
