"""The periodic jobs that must not run twice at once (the sweep, the alert check, the
analytics rollup) each take one Redis lock for the length of a run."""

from __future__ import annotations

import pytest

import jobs.alerts
import jobs.analytics
import jobs.sweep

#: (job module, its RQ entry point, the function it does its work in, what a skipped run returns)
JOBS = [
    pytest.param(jobs.sweep, jobs.sweep.sweep, "sweep_once", {"skipped": True}, id="sweep"),
    pytest.param(jobs.alerts, jobs.alerts.check_alerts, "check_once", [], id="alerts"),
    pytest.param(jobs.analytics, jobs.analytics.rollup, "rollup_recent", 0, id="rollup"),
]


@pytest.mark.parametrize(("module", "job", "work", "skipped"), JOBS)
def test_a_run_is_skipped_while_another_run_holds_the_lock(
    app, redis_conn, monkeypatch, module, job, work, skipped
):
    monkeypatch.setattr(module, work, lambda *args: pytest.fail("ran beside another run"))
    redis_conn.set(module.LOCK_KEY, "another worker", ex=60)
    assert job() == skipped
    assert redis_conn.get(module.LOCK_KEY) == b"another worker"  # its lock, left alone


@pytest.mark.parametrize(("module", "job", "work", "skipped"), JOBS)
def test_the_lock_is_given_back_when_a_run_fails(
    app, redis_conn, monkeypatch, module, job, work, skipped
):
    def broken(*args):
        assert redis_conn.exists(module.LOCK_KEY)  # held while the run works
        raise RuntimeError("poison")

    monkeypatch.setattr(module, work, broken)
    with pytest.raises(RuntimeError):
        job()
    assert not redis_conn.exists(module.LOCK_KEY)  # the next run goes ahead at once


@pytest.mark.parametrize(("module", "job", "work", "skipped"), JOBS)
def test_a_run_that_outlasts_its_lock_leaves_the_next_runs_lock_alone(
    app, redis_conn, monkeypatch, module, job, work, skipped
):
    def slow(*args):
        # The lock expired during this run and the next run took it.
        redis_conn.set(module.LOCK_KEY, "the next run", ex=60)
        return skipped

    monkeypatch.setattr(module, work, slow)
    job()
    assert redis_conn.get(module.LOCK_KEY) == b"the next run"
