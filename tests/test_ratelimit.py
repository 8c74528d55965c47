"""The shared send-rate limiter against a real Redis: correctness only, never speed
(bench/ratelimit.py measures the achieved rate and prints it)."""

from __future__ import annotations

import time

import redis

from bench.ratelimit import busiest_window_for_certain, run_workers
from bot.ratelimit import SendRateLimiter


def test_five_per_second_grants_exactly_five_of_twenty_immediate_attempts(redis_conn):
    limiter = SendRateLimiter(redis_conn, 5)

    granted = [limiter.try_acquire() for _ in range(20)]

    assert granted.count(True) == 5
    assert granted[:5] == [True] * 5


def test_two_limiters_on_one_redis_share_one_budget(redis_url, redis_conn):
    first = SendRateLimiter(redis.Redis.from_url(redis_url), 5)
    second = SendRateLimiter(redis.Redis.from_url(redis_url), 5)

    granted = [limiter.try_acquire() for _ in range(10) for limiter in (first, second)]

    assert granted.count(True) == 5


def test_slots_are_granted_again_once_the_window_has_passed(redis_conn):
    limiter = SendRateLimiter(redis_conn, 1)
    assert limiter.try_acquire()
    assert not limiter.try_acquire()

    deadline = time.monotonic() + 5
    while not limiter.try_acquire():
        assert time.monotonic() < deadline, "no slot granted again within 5 s"
        time.sleep(0.05)


def test_four_processes_never_get_more_than_the_rate_in_any_one_second(redis_url, redis_conn):
    results = run_workers(redis_url, workers=4, rate=20, seconds=1.5)

    spans = [span for result in results for span in result.granted]
    assert spans, "the workers were granted nothing at all"
    assert busiest_window_for_certain(spans) <= 20
