"""RQ internals for operators (`/admin/rq`): queue depths, workers, and the failed job
registry with retry and delete, behind the admin login.

This is the small part of rq-dashboard an operator needs. rq-dashboard itself (0.9.0)
renders its pages with inline scripts, which our Content-Security-Policy refuses, and
brings jQuery, `six` and a sentinel client along; the registry calls here are RQ's own.
"""

from __future__ import annotations

from flask import jsonify, render_template
from rq import Queue, Worker
from rq.exceptions import InvalidJobOperationError, NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from bot.core.audit import audit
from bot.core.errors import ApiError
from bot.core.models import utcnow
from bot.extensions import QUEUE_NAMES, services
from bot.web.admin import bp
from bot.web.auth import actor

FAILED_SHOWN = 100  # per queue; the count above the list is the full one


@bp.get("/rq")
def rq_jobs():
    """Queues, workers and failed jobs (viewers and admins)."""
    svc = services()
    queues = [queue_view(svc.queues[name]) for name in QUEUE_NAMES]
    workers = sorted(Worker.all(connection=svc.redis), key=lambda w: w.name)
    return render_template("dashboard/jobs.html", queues=queues, workers=workers)


@bp.post("/rq/jobs/<job_id>/requeue")
def requeue_failed_job(job_id: str):
    """Put a failed job back on its queue, to run again as it was."""
    job = _failed_job(job_id)
    FailedJobRegistry(queue=Queue(job.origin, connection=job.connection)).requeue(job)
    audit(actor(), "requeue_job", job_id, {"queue": job.origin, "call": job.func_name}, utcnow())
    return jsonify({"requeued": [job_id]})


@bp.delete("/rq/jobs/<job_id>")
def delete_failed_job(job_id: str):
    """Forget a failed job for good."""
    job = _failed_job(job_id)
    FailedJobRegistry(queue=Queue(job.origin, connection=job.connection)).remove(
        job, delete_job=True
    )
    audit(actor(), "delete_job", job_id, {"queue": job.origin, "call": job.func_name}, utcnow())
    return jsonify({"deleted": [job_id]})


@bp.post("/rq/queues/<name>/requeue-failed")
def requeue_all_failed(name: str):
    """Put every failed job of one queue back on it."""
    queue = services().queues.get(name)
    if queue is None:
        raise ApiError(404, "not_found", f"no queue {name!r}")
    registry = FailedJobRegistry(queue=queue)
    requeued = []
    for job_id in registry.get_job_ids():
        try:
            registry.requeue(job_id)
            requeued.append(job_id)
        except (InvalidJobOperationError, NoSuchJobError):
            continue  # removed or retried by someone else meanwhile
    audit(actor(), "requeue_failed_jobs", name, {"jobs": requeued}, utcnow())
    return jsonify({"requeued": requeued})


def queue_view(queue: Queue) -> dict:
    failed = FailedJobRegistry(queue=queue)
    ids = failed.get_job_ids(0, FAILED_SHOWN - 1)
    jobs = [job for job in Job.fetch_many(ids, connection=queue.connection) if job]
    return {
        "name": queue.name,
        "waiting": queue.count,
        "started": StartedJobRegistry(queue=queue).count,
        "scheduled": ScheduledJobRegistry(queue=queue).count,
        "failed": failed.count,
        "failed_jobs": [failed_job_view(job) for job in jobs],
    }


def failed_job_view(job: Job) -> dict:
    result = job.latest_result()
    error = (result.exc_string if result else None) or ""
    return {
        "id": job.id,
        "call": job.get_call_string() if job.func_name else job.id,
        "ended_at": job.ended_at,
        "error": error,
        "error_line": error.strip().splitlines()[-1] if error.strip() else "",
    }


def _failed_job(job_id: str) -> Job:
    try:
        job = Job.fetch(job_id, connection=services().redis)
    except NoSuchJobError:
        raise ApiError(404, "not_found", f"no job {job_id!r}") from None
    if job.id not in FailedJobRegistry(queue=Queue(job.origin, connection=job.connection)):
        raise ApiError(409, "not_failed", f"job {job_id!r} is not in the failed job registry")
    return job
