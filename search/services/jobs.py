"""The one job runner: the life of a background `Job` (ingestion, code and index builds).

    queued  --job_run-->  running  --the work returns-->  done
                                   --JobFailed--------->  failed

`job_queue` creates the job (queued) and sends its task after commit; the task takes the job
from `job_to_run` and hands it, with the work to do, to `job_run`, which marks it running
(started_at), gives the work a `progress(**fields)` callback for processed / total / message /
stats / errors, and ends it done with the fields the work returns, or failed with the message
of a JobFailed, both with finished_at. Any other exception leaves the job running on purpose:
the Celery task retries database errors, and `fail_stale_jobs` ends a job whose worker died.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.utils import timezone

from search.models import Job

JobProgress = Callable[..., None]  # progress(processed=..., total=..., message=..., ...)


class JobFailed(Exception):
    """Work that cannot be done as asked (nothing to fit a code on, its space deleted): the
    job ends failed with this message. Retrying would not help, so the task does not."""


def job_queue(*, kind: str, description: str, params: dict, task, user=None) -> Job:
    """A queued job; `task` (a Celery task taking the job id) is sent once the job is
    committed, so a worker never looks for a job that is not there yet."""
    job = Job.objects.create(kind=kind, description=description, params=params,
                             created_by=user)
    task.delay_on_commit(job.pk)
    return job


def job_to_run(job_id: int) -> Job | None:
    """The job a task was sent for, or None when it was deleted or has already ended (a
    message redelivered after the job finished)."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None or job.status in (Job.Status.DONE, Job.Status.FAILED):
        return None
    return job


def job_run(*, job: Job, work: Callable[[JobProgress], dict[str, Any]]) -> Job:
    """Run `work(progress)` as the job: running, then done with the Job fields the work
    returns (message, stats, processed, total, errors), or failed with a JobFailed's message.
    Returns the job as stored."""
    _save(job, status=Job.Status.RUNNING, started_at=timezone.now())
    try:
        outcome = work(lambda **fields: _save(job, **fields))
    except JobFailed as exc:
        _save(job, status=Job.Status.FAILED, message=str(exc), finished_at=timezone.now())
    else:
        _save(job, **outcome, status=Job.Status.DONE, finished_at=timezone.now())
    job.refresh_from_db()
    return job


def _save(job: Job, **fields: Any) -> None:
    # An UPDATE of just these columns: progress from a second connection (the index-build
    # watcher) must not be overwritten with a stale copy of the whole row.
    Job.objects.filter(pk=job.pk).update(**fields)


def fail_stale_jobs(*, older_than_minutes: int = 60) -> int:
    """Mark jobs that have been 'running' with no end for too long as failed (a dead worker)."""
    cutoff = timezone.now() - timedelta(minutes=older_than_minutes)
    stale = Job.objects.filter(status=Job.Status.RUNNING, started_at__lt=cutoff)
    failed = stale.filter(kind=Job.Kind.INDEX).update(
        status=Job.Status.FAILED, finished_at=timezone.now(),
        message="the worker stopped before finishing; the periodic sweep queues the build "
                "again and it resumes where it stopped")
    return failed + stale.update(
        status=Job.Status.FAILED, finished_at=timezone.now(),
        message="the worker stopped before finishing; ingestion is idempotent, so re-submit "
                "the file to complete it")
