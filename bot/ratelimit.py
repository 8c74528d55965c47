"""The one global send-rate limiter, shared by every worker through Redis.

Uses the `limits` library (flask-limiter's engine) with a moving window, so no
one-second window ever carries more than SEND_RATE_PER_SECOND sends, however many
worker processes or machines take part.
"""

from __future__ import annotations

import redis
from limits import RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter


class SendRateLimiter:
    def __init__(self, conn: redis.Redis, per_second: int, name: str = "whatsapp-send") -> None:
        storage = RedisStorage("redis://", connection_pool=conn.connection_pool)
        self._limiter = MovingWindowRateLimiter(storage)
        self._item = RateLimitItemPerSecond(per_second)
        self._name = name

    def try_acquire(self) -> bool:
        """Take one send slot now; False when this second's budget is spent."""
        return self._limiter.hit(self._item, self._name)
