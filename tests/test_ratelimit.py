"""The shared send-rate limiter against a real Redis: correctness only, never speed
(bench/ratelimit.py measures the achieved rate and prints it)."""

from __future__ import annotations

import time

import redis

from bench.ratelimit import busiest_window_for_certain, run_workers
from bot.delivery.ratelimit import SendRateLimiter


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


def test_a_batch_takes_its_slots_all_at_once_or_not_at_all(redis_conn):
    limiter = SendRateLimiter(redis_conn, 10)

    assert limiter.acquire(4, wait_seconds=0) == 4
    assert limiter.acquire(7, wait_seconds=0) == 0  # only 6 left: none taken
    assert limiter.acquire(6, wait_seconds=0) == 6
    assert limiter.acquire(1, wait_seconds=0) == 0


def test_a_batch_bigger_than_the_rate_gets_one_seconds_worth_once_the_window_frees(redis_conn):
    limiter = SendRateLimiter(redis_conn, 10)
    assert limiter.acquire(10, wait_seconds=0) == 10

    assert limiter.acquire(50, wait_seconds=5) == 10


def test_a_slowed_down_limiter_grants_batches_at_the_lower_rate(redis_conn):
    limiter = SendRateLimiter(redis_conn, 100)
    assert limiter.slow_down() == 50

    assert limiter.acquire(80, wait_seconds=0) == 50
    assert limiter.acquire(1, wait_seconds=0) == 0


def test_four_processes_never_get_more_than_the_rate_in_any_one_second(redis_url, redis_conn):
    results = run_workers(redis_url, workers=4, rate=20, seconds=1.5)

    spans = [span for result in results for span in result.granted]
    assert spans, "the workers were granted nothing at all"
    assert busiest_window_for_certain(spans) <= 20


def test_the_pacing_schedule_gives_each_batch_its_own_stretch_of_time(redis_url, redis_conn):
    """Two workers' batches, booked one after the other, follow each other in the shared
    schedule: at 1,000/s, 50 sends take 50 ms, and the next batch starts where it ends."""
    one = SendRateLimiter(redis_conn, 1000)
    other = SendRateLimiter(redis.Redis.from_url(redis_url), 1000)

    booked_at = time.monotonic()
    first = one.schedule(50)
    second = other.schedule(50)
    elapsed = time.monotonic() - booked_at

    assert first == (0.0, 0.05)  # nothing booked before: at once
    start, spread = second
    assert spread == 0.05
    assert 0.05 - elapsed - 0.002 <= start <= 0.05  # from where the first one ends


def test_a_slowed_down_schedule_spreads_a_batch_over_longer(redis_conn):
    limiter = SendRateLimiter(redis_conn, 100)
    limiter.slow_down()
    assert limiter.schedule(10) == (0.0, 0.2)  # 10 sends at 50/s
    assert limiter.schedule(0) == (0.0, 0.0)


def test_a_schedule_booked_after_an_idle_spell_starts_at_once(redis_conn):
    limiter = SendRateLimiter(redis_conn, 1000)
    limiter.schedule(20)  # takes 20 ms
    time.sleep(0.05)
    assert limiter.schedule(20) == (0.0, 0.02)


def test_a_schedule_that_ran_dry_a_moment_ago_makes_the_gap_up(redis_conn):
    """Between two batches the schedule may run dry for a few milliseconds; the next batch
    starts where the last one ended (its first sends due at once), so the rate holds."""
    limiter = SendRateLimiter(redis_conn, 1000)
    limiter.schedule(10)  # 10 ms
    time.sleep(0.015)  # a 5 ms gap, within CATCH_UP_SECONDS
    start, spread = limiter.schedule(10)
    assert -0.025 < start < 0 and spread == 0.01
