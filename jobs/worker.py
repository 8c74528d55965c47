"""The worker process (`python -m jobs.worker`, the Procfile's `worker`).

One place builds the app for jobs: it pushes an app context, imports the job modules,
and runs a non-forking RQ worker: a send job handles a whole batch, so a fork per job
would only cost (fork + imports + new connections per job) and throw away the warm
provider connections. On the dyno's SIGTERM the running send job finishes its batch,
hands the rest to the queue and the worker stops. A child process runs RQ's cron
scheduler for the periodic sweep.

`--forking` runs RQ's classic HerokuWorker instead (one forked process per job) and
`--queues` picks the queues: the benchmark's naive one-job-per-message path.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import time

import redis
from rq import Queue, SimpleWorker
from rq.cron import CronScheduler
from rq.worker.base import StopRequested

import jobs.campaigns  # noqa: F401  (preloaded before forking)
import jobs.crm  # noqa: F401
import jobs.experiments  # noqa: F401
import jobs.send  # noqa: F401
import jobs.statuses  # noqa: F401
from bot import create_app, create_app_or_exit
from bot.core.models import db
from bot.delivery import dispatch
from bot.extensions import QUEUE_NAMES, services
from bot.intake.woo_catch_up import configured
from bot.web.logs import JobLogContext, LoggingHerokuWorker
from jobs.alerts import INTERVAL_SECONDS as ALERTS_INTERVAL
from jobs.alerts import check_alerts
from jobs.analytics import INTERVAL_SECONDS as ROLLUP_INTERVAL
from jobs.analytics import TIMEOUT_SECONDS as ROLLUP_TIMEOUT
from jobs.analytics import rollup
from jobs.experiments import INTERVAL_SECONDS as ROLLOUT_INTERVAL
from jobs.experiments import check_rollouts
from jobs.retention import INTERVAL_SECONDS as RETENTION_INTERVAL
from jobs.retention import redact_expired
from jobs.sweep import sweep
from jobs.woocommerce import TIMEOUT_SECONDS as WOO_TIMEOUT
from jobs.woocommerce import catch_up_job
from jobs.write_back import INTERVAL_SECONDS as WRITE_BACK_INTERVAL
from jobs.write_back import write_back_due

log = logging.getLogger(__name__)


#: Waits between reconnection attempts while Redis is away, in seconds.
RECONNECT_DELAYS = (1, 2, 4, 8, 15, 30)


def reconnect_delay(failures: int) -> int:
    return RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]


def run_cron(interval: int) -> None:
    """Child process: enqueue the sweep every `interval` seconds, the alert check every
    minute, retention hourly, analytics rollups and A/B roll-outs every ten minutes.
    Rides out a Redis outage (the sweep is what recovers from one)."""
    app = create_app()
    with app.app_context():
        failures = 0
        while True:
            try:
                svc = services()
                catch_up = svc.settings.woocommerce_catch_up_minutes
                make_cron(svc.redis, interval, catch_up if configured(svc.settings) else 0).start()
                return  # stopped on request (SIGTERM)
            except redis.RedisError as exc:
                log.warning(
                    "cron lost Redis (%s); retrying in %d s", exc, reconnect_delay(failures)
                )
                time.sleep(reconnect_delay(failures))
                failures += 1


def make_cron(conn: redis.Redis, interval: int, catch_up_minutes: int = 0) -> CronScheduler:
    cron = CronScheduler(
        connection=conn, name=f"dakiya-sweep-{multiprocessing.current_process().pid}"
    )
    cron.register(sweep, "statuses", interval=interval, result_ttl=0)
    cron.register(check_alerts, "statuses", interval=ALERTS_INTERVAL, result_ttl=0)
    cron.register(redact_expired, "statuses", interval=RETENTION_INTERVAL, result_ttl=0)
    cron.register(check_rollouts, "statuses", interval=ROLLOUT_INTERVAL, result_ttl=0)
    # The lowest-priority queue: receipts and order messages go first.
    cron.register(
        rollup, "campaigns", interval=ROLLUP_INTERVAL, job_timeout=ROLLUP_TIMEOUT, result_ttl=0
    )
    cron.register(write_back_due, "orders", interval=WRITE_BACK_INTERVAL, result_ttl=0)
    if catch_up_minutes > 0:  # WooCommerce never redelivers: ask for what it missed
        cron.register(
            catch_up_job,
            "orders",
            interval=catch_up_minutes * 60,
            job_timeout=WOO_TIMEOUT,
            result_ttl=0,
        )
    return cron


class StopAware:
    """Mixin for an RQ worker class: remembers a stop request (SIGTERM, SIGINT) and tells
    a running send job to finish its batch and hand the rest on."""

    def request_stop(self, signum, frame):
        dispatch.stop_requested.set()
        super().request_stop(signum, frame)


class SendingWorker(StopAware, JobLogContext, SimpleWorker):
    """Runs jobs in this process: no fork per job, provider connections stay warm."""


class ForkingWorker(StopAware, LoggingHerokuWorker):
    """RQ's classic worker, one forked process per job (the benchmark's naive path)."""


def work(make_worker, log_level: str) -> None:
    """Run a worker until it is asked to stop. RQ's worker quits when Redis goes away in
    the middle of a job; then a new one is started once Redis answers again, so the
    process (and the rows stranded by the outage) is not lost."""
    failures = 0
    while not dispatch.stop_requested.is_set():
        try:
            if make_worker().work(with_scheduler=True, logging_level=log_level):
                failures = 0
        except redis.RedisError as exc:
            log.warning("worker lost Redis: %s", exc)
        if dispatch.stop_requested.is_set():
            return
        delay = reconnect_delay(failures)
        log.warning("worker stopped without a stop request; restarting in %d s", delay)
        try:
            time.sleep(delay)
        except StopRequested:  # SIGTERM while waiting: the old worker's handler says so
            return
        failures += 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Dakiya's RQ worker")
    parser.add_argument("--queues", nargs="+", default=list(QUEUE_NAMES))
    parser.add_argument("--forking", action="store_true", help="fork a process per job")
    args = parser.parse_args(argv)
    app = create_app_or_exit()
    with app.app_context():
        svc = services()
        cron = multiprocessing.Process(
            target=run_cron, args=(svc.settings.sweep_interval_seconds,), daemon=True
        )
        cron.start()
        # No connection shared with a forked child: close the pool's, not just return it.
        getattr(db.obj, "close_all", db.close)()
        worker_class = ForkingWorker if args.forking else SendingWorker
        queues = [svc.queues.get(name) or Queue(name, connection=svc.redis) for name in args.queues]
        try:
            work(lambda: worker_class(queues, connection=svc.redis), svc.settings.log_level)
        finally:
            cron.terminate()


if __name__ == "__main__":
    main()
