"""The real worker process (`python -m jobs.worker`, the Procfile's worker): it sends,
plays receipts through the scheduler, never double-sends with a second worker beside
it, and stops cleanly on SIGTERM as a dyno restart sends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.core.models import Message, State
from bot.extensions import services
from tests.conftest import SECRETS
from tests.factories import queued_message

ROOT = Path(__file__).resolve().parent.parent


def start_worker(settings) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "WHATSAPP_PROVIDER": settings.whatsapp_provider,
        "META_API_BASE_URL": settings.meta_api_base_url,
        "SANDBOX_RECEIPT_DELAY_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
        "QUIET_HOURS_MARKETING": settings.quiet_hours_marketing or "off",
        "MIN_GAP_SECONDS": str(settings.min_gap_seconds),
        **{name.upper(): value for name, value in SECRETS.items()},
    }
    # Its own process group, so its scheduler and cron children can be stopped with it.
    return subprocess.Popen(
        [sys.executable, "-m", "jobs.worker"], cwd=ROOT, env=env, start_new_session=True
    )


def wait_until(predicate, seconds: float = 60) -> bool:
    """Poll until `predicate()` holds (a liveness wait, not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def state_of(message_id: int) -> State:
    return Message.get_by_id(message_id).state


@pytest.fixture
def workers():
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)


def test_worker_sends_and_applies_played_back_receipts(app, settings, workers):
    message = queued_message()
    workers.append(start_worker(settings))
    assert wait_until(lambda: state_of(message.id) == State.READ)


def test_two_workers_send_a_message_enqueued_many_times_exactly_once(
    make_app, meta_settings, fake_whatsapp, workers
):
    make_app(meta_settings)
    message = queued_message()
    for _ in range(20):
        services().queues["orders"].enqueue("jobs.send.send_message", message.id)
    workers.extend([start_worker(meta_settings), start_worker(meta_settings)])
    assert wait_until(
        lambda: services().queues["orders"].count == 0 and state_of(message.id) == State.SENT
    )
    time.sleep(1)  # let any straggler job finish before counting
    assert len(fake_whatsapp.requests) == 1


def test_worker_stops_cleanly_on_sigterm(app, settings, workers):
    proc = start_worker(settings)
    workers.append(proc)
    message = queued_message()
    assert wait_until(lambda: state_of(message.id) == State.READ)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def test_daily_cap_holds_with_three_workers_racing_for_one_customer(make_app, settings, workers):
    from bot.core.models import Reason
    from tests.factories import marketing_message

    settings = settings.replace(quiet_hours_marketing="off", min_gap_seconds=0)
    make_app(settings)
    messages = [marketing_message(key=f"k{i}") for i in range(12)]
    for message in messages:
        services().queues["campaigns"].enqueue("jobs.send.send_message", message.id)
    workers.extend(start_worker(settings) for _ in range(3))
    finished = (State.READ, State.DEFERRED)
    assert wait_until(lambda: all(state_of(m.id) in finished for m in messages))
    rows = [Message.get_by_id(m.id) for m in messages]
    assert sum(r.state == State.READ for r in rows) == 1  # the cap is 1 a day
    assert {r.reason for r in rows if r.state == State.DEFERRED} == {Reason.CAP_DAILY}


def test_metrics_add_up_across_worker_processes(make_app, settings, workers):
    app = make_app(settings.replace(metrics_token="scrape-me"))
    messages = [
        queued_message(event_id=f"e{i}", order_id=str(i), phone=f"+9198123456{i:02d}")
        for i in range(6)
    ]
    workers.extend([start_worker(settings), start_worker(settings)])
    assert wait_until(lambda: all(state_of(m.id) == State.READ for m in messages))
    text = (
        app.test_client()
        .get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        .get_data(as_text=True)
    )
    assert 'dakiya_send_attempts_total{outcome="sent",provider="sandbox"} 6.0' in text
    assert 'dakiya_send_latency_seconds_count{category="utility",provider="sandbox"} 6.0' in text
    assert 'dakiya_messages{category="utility",reason="",state="read"} 6.0' in text
