"""The one global send-rate limiter, shared by every worker through Redis.

Uses the `limits` library (flask-limiter's engine) with a moving window, so no
one-second window ever carries more than the allowed sends, however many worker
processes or machines take part. When the provider says we are too fast (Meta 130429,
HTTP 429) every worker slows down together: the allowed rate halves, then doubles back
every `recovery_seconds` until it is SEND_RATE_PER_SECOND again.
"""

from __future__ import annotations

import time

import redis
from limits import RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

THROTTLE_KEY = "dakiya:throttle"
PACE_KEY = "dakiya:pace"

#: Where a batch's sends go in the shared schedule: from the end of the last batch
#: scheduled, for `n / rate` seconds (a virtual-scheduling, GCRA-style pacer; `limits`
#: only answers yes or no, not when), even when that end is up to CATCH_UP_SECONDS ago:
#: a schedule that ran dry that briefly between two batches makes the gap up (its first
#: sends go at once), so batch boundaries do not lower the rate; after a longer pause it
#: starts now. Redis's clock, so that workers on
#: several machines share one. Returns the seconds from now the batch starts (below 0:
#: its first sends are due already).
CATCH_UP_SECONDS = 0.025
PACE_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local free = tonumber(redis.call('GET', KEYS[1]) or '0')
local start = free
if free < now - tonumber(ARGV[3]) then start = now end
local finish = start + tonumber(ARGV[1]) / tonumber(ARGV[2])
redis.call('SET', KEYS[1], string.format('%.6f', finish), 'PX',
           math.ceil((finish - now) * 1000) + 60000)
return string.format('%.6f', start - now)
"""


def recovered_rate(
    floor: float, since: float, now: float, ceiling: int, recovery_seconds: float
) -> int:
    """The rate `now`, after it was cut to `floor` at `since`: doubling every
    `recovery_seconds`, never above `ceiling`, never below 1."""
    grown = floor * 2 ** (max(now - since, 0) / recovery_seconds)
    return max(1, min(ceiling, int(grown)))


class SendRateLimiter:
    def __init__(
        self,
        conn: redis.Redis,
        per_second: int,
        name: str = "whatsapp-send",
        recovery_seconds: float = 30.0,
    ) -> None:
        storage = RedisStorage("redis://", connection_pool=conn.connection_pool)
        self._limiter = MovingWindowRateLimiter(storage)
        self._conn = conn
        self._name = name
        self.per_second = per_second
        self.recovery_seconds = recovery_seconds

    def current_rate(self, now: float | None = None) -> int:
        """The rate allowed now: SEND_RATE_PER_SECOND, or less after a slow-down."""
        throttle = self._conn.hgetall(THROTTLE_KEY)
        if not throttle:
            return self.per_second
        now = time.time() if now is None else now
        return recovered_rate(
            float(throttle[b"rate"]),
            float(throttle[b"at"]),
            now,
            self.per_second,
            self.recovery_seconds,
        )

    def try_acquire(self) -> bool:
        """Take one send slot now; False when this second's budget is spent."""
        return self.acquire(1, wait_seconds=0) == 1

    def acquire(self, wanted: int, wait_seconds: float) -> int:
        """Take slots for a batch all at once, waiting up to `wait_seconds` for the
        window to have room: `min(wanted, current rate)` slots, or 0 when the wait ran out.

        All or nothing, and only just before the batch goes out: slots granted early and
        used late would let the provider see more than the rate in some second.
        """
        deadline = time.monotonic() + wait_seconds
        while True:
            rate = self.current_rate()
            take = min(wanted, rate)
            if take <= 0:
                return 0
            if self._limiter.hit(RateLimitItemPerSecond(rate), self._name, cost=take):
                return take
            if time.monotonic() >= deadline:
                return 0
            time.sleep(0.01)  # the moving window frees slots as old grants age out

    def schedule(self, sends: int) -> tuple[float, float]:
        """Book `sends` granted slots in the schedule every worker shares: the seconds
        from now at which they start, and the `sends / rate` seconds they then take, so
        that the provider sees the rate spread evenly, never a second's slots at once."""
        if sends <= 0:
            return 0.0, 0.0
        rate = self.current_rate()
        start = float(self._pace(keys=[PACE_KEY], args=[sends, rate, CATCH_UP_SECONDS]))
        return start, sends / rate

    @property
    def _pace(self):
        script = self.__dict__.get("_pace_script")
        if script is None:
            script = self.__dict__["_pace_script"] = self._conn.register_script(PACE_SCRIPT)
        return script

    def slow_down(self, now: float | None = None) -> int:
        """The provider throttled us: halve the rate for every worker. The new rate."""
        now = time.time() if now is None else now
        rate = max(1, self.current_rate(now) // 2)
        # Long enough to grow back from 1 to the full rate; then the key simply expires.
        ttl = int(self.recovery_seconds * (self.per_second.bit_length() + 1))
        pipe = self._conn.pipeline()
        pipe.hset(THROTTLE_KEY, mapping={"rate": rate, "at": now})
        pipe.expire(THROTTLE_KEY, max(ttl, 1))
        pipe.execute()
        return rate
