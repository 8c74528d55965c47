"""Fallback for the naive path until `python -m jobs.worker --forking --queues naive` exists:
the classic forking RQ worker (one fork per job) on the queue "naive", no cron."""

from __future__ import annotations

import jobs.send  # noqa: F401  (preloaded before forking)
from bot import create_app_or_exit
from bot.extensions import services
from bot.logs import LoggingHerokuWorker
from bot.models import db


def main() -> None:
    app = create_app_or_exit()
    with app.app_context():
        svc = services()
        db.close()
        queue = svc.queues.get("naive")
        if queue is None:
            from rq import Queue

            queue = Queue("naive", connection=svc.redis)
        LoggingHerokuWorker([queue], connection=svc.redis).work(
            logging_level=svc.settings.log_level
        )


if __name__ == "__main__":
    main()
