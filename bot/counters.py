"""What was already sent to whom: the policy's counters, kept in Redis and rebuilt from
the database (the truth) when Redis has lost them.

Per customer, a sorted set of their recent sends (member "<message id>:<category>",
score = send time) gives daily and weekly caps and the pair-rate gap; one sorted set of
customers reached outside a service window gives the messaging tier. Decisions for one
customer are serialised by a short Redis lock, so concurrent workers cannot both take
the last slot of a cap.
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import redis

from bot.models import Customer, Message, State
from bot.policy import WEEK, Counters, Rules, local_midnight

HISTORY = "dakiya:sent:{customer_id}"
TIER = "dakiya:tier"
LOCK = "dakiya:lock:customer:{customer_id}"
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


class SendLedger:
    def __init__(self, conn: redis.Redis) -> None:
        self.conn = conn
        self._take_tier_slot = conn.register_script(_TIER_SCRIPT)

    @contextmanager
    def customer_lock(self, customer_id: int):
        """Hold the customer's decision lock; yields False if another worker has it."""
        lock = self.conn.lock(LOCK.format(customer_id=customer_id), timeout=30, blocking_timeout=3)
        acquired = lock.acquire()
        try:
            yield acquired
        finally:
            if acquired:
                try:
                    lock.release()
                except redis.exceptions.LockError:
                    pass  # expired under a very slow decision; nothing to release

    def gather(
        self, message: Message, customer: Customer, timezone: str, now: datetime, rules: Rules
    ) -> Counters:
        """The counters `decide` needs for this message."""
        key = HISTORY.format(customer_id=customer.id)
        if not self.conn.exists(key):
            self._rebuild_history(key, customer, now)
        entries = self.conn.zrangebyscore(key, _epoch(now - KEEP), "+inf", withscores=True)
        own = f"{message.id}:".encode()
        midnight, week_ago = local_midnight(now, timezone), now - WEEK
        today = week = 0
        oldest = last = None
        for member, score in entries:
            if member.startswith(own):
                continue  # this very message (a retry after a failed attempt)
            sent_at = _moment(score)
            last = max(last, sent_at) if last else sent_at
            if not member.decode().endswith(f":{message.category}"):
                continue
            if sent_at >= week_ago:
                week += 1
                oldest = min(oldest, sent_at) if oldest else sent_at
            if sent_at >= midnight:
                today += 1
        counters = Counters(
            sent_today=today,
            sent_this_week=week,
            oldest_this_week=oldest,
            last_sent_at=last,
            duplicate_sent=is_duplicate(message, now, rules.duplicate_window),
        )
        if rules.tier_limit is None:
            return counters  # no tier to count against: spare four Redis calls per send
        self.conn.zremrangebyscore(TIER, "-inf", _epoch(now - timedelta(hours=24)))
        first = self.conn.zrange(TIER, 0, 0, withscores=True)
        return dataclasses.replace(
            counters,
            tier_used=self.conn.zcard(TIER),
            tier_has_customer=self.conn.zscore(TIER, customer.id) is not None,
            tier_frees_at=_moment(first[0][1]) if first else None,
        )

    def take_tier_slot(self, customer: Customer, now: datetime, limit: int | None) -> bool:
        cutoff = _epoch(now - timedelta(hours=24))
        limit_arg = -1 if limit is None else limit
        return bool(
            self._take_tier_slot(keys=[TIER], args=[customer.id, _epoch(now), cutoff, limit_arg])
        )

    def record(self, message: Message, customer: Customer, now: datetime) -> None:
        """Count the send before it happens: a concurrent decision already sees it."""
        key = HISTORY.format(customer_id=customer.id)
        pipe = self.conn.pipeline()
        pipe.zadd(key, {f"{message.id}:{message.category}": _epoch(now)})
        pipe.zremrangebyscore(key, "-inf", _epoch(now - KEEP))
        pipe.expire(key, int(KEEP.total_seconds()))
        pipe.execute()

    def forget(self, message: Message, customer: Customer) -> None:
        """Un-count a send that did not happen (rate-limited, rejected, retried later)."""
        self.conn.zrem(HISTORY.format(customer_id=customer.id), f"{message.id}:{message.category}")

    def _rebuild_history(self, key: str, customer: Customer, now: datetime) -> None:
        """Redis lost the history (or never had it): the database's sends are the truth."""
        sends = Message.select(Message.id, Message.category, Message.sent_at).where(
            (Message.customer == customer)
            & Message.state.in_(SENT_STATES)
            & (Message.sent_at >= now - KEEP)
        )
        entries = {f"{m.id}:{m.category}": _epoch(m.sent_at) for m in sends}
        if entries:
            self.conn.zadd(key, entries)
            self.conn.expire(key, int(KEEP.total_seconds()))


def is_duplicate(message: Message, now: datetime, window: timedelta) -> bool:
    """The same template with the same parameters went to this customer within `window`."""
    if not window or message.template_name is None or message.customer_id is None:
        return False
    return (
        Message.select()
        .where(
            (Message.customer == message.customer_id)
            & (Message.id != message.id)
            & (Message.template_name == message.template_name)
            & (Message.language == message.language)
            & (Message.params == message.params)
            & (
                (Message.state == State.SENDING)
                | (Message.state.in_(SENT_STATES) & (Message.sent_at >= now - window))
            )
        )
        .exists()
    )
