"""The one job runner: the life of a background `Job` (ingestion, code and index builds).

    queued  --job_to_run claims it-->  running  --the work returns-->  done
                                                --JobFailed / a bug-->  failed
                                                --database lost-----> running, no heartbeat
    running without a heartbeat for STALLED_AFTER s  --recover_stalled_jobs-->  queued again
    (an ingestion resumes after its last committed batch) or failed with the reason

A running job's worker writes `heartbeat_at` every HEARTBEAT_EVERY seconds from a thread of
its own, so "running" always means a live worker holds it: a killed worker or a database
outage that outlasted the task's retries shows as a stale heartbeat, and the periodic sweep
resumes or ends the job within a minute instead of the job sitting "running" forever.
`job_to_run` claims a job in one conditional UPDATE, so a redelivered message and a resume
never run the same job twice at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.db import InterfaceError, OperationalError, connection
from django.db.models import Q
from django.utils import timezone

from search.models import Job

log = logging.getLogger(__name__)
JobProgress = Callable[..., None]  # progress(processed=..., total=..., message=..., ...)
HEARTBEAT_EVERY = 10.0  # seconds
STALLED_AFTER = 45.0  # seconds without a heartbeat: the job's worker is gone
MAX_RESUMES = 3  # a job that keeps losing its worker is failed, not retried forever
SAFE_TO_RESUBMIT = ("every batch it committed is stored whole, so re-submitting the file is "
                    "safe: rows already in are reported unchanged")


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
    """Claim the job a task was sent for: None when it was deleted, has ended (a message
    redelivered after the job finished) or is held by a live worker (a fresh heartbeat)."""
    now = timezone.now()
    claimable = Q(status=Job.Status.QUEUED) | Q(status=Job.Status.RUNNING) & (
        Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=now - timedelta(seconds=STALLED_AFTER)))
    if not Job.objects.filter(claimable, pk=job_id).update(heartbeat_at=now):
        return None
    return Job.objects.get(pk=job_id)


def job_run(*, job: Job, work: Callable[[JobProgress], dict[str, Any]]) -> Job:
    """Run `work(progress)` as the job: running, then done with the Job fields the work
    returns (message, stats, processed, total, errors), or failed with the reason. A lost
    database connection is raised for the task to retry, the job left running; its heartbeat
    stops, so the sweep resumes it if the retries run out. Returns the job as stored."""
    _save(job, status=Job.Status.RUNNING, started_at=job.started_at or timezone.now(),
          heartbeat_at=timezone.now())
    with _heartbeat(job.pk):
        try:
            outcome = work(lambda **fields: _save(job, **fields))
        except JobFailed as exc:
            _end(job, Job.Status.FAILED, message=str(exc))
        except (OperationalError, InterfaceError, ConnectionError, TimeoutError):
            _release(job)  # the task's retry may claim it at once
            raise
        except Exception as exc:  # a bug or an input no reader expected: retrying fails again
            log.exception("job %s failed", job.pk)
            _end(job, Job.Status.FAILED,
                 message=f"failed: {type(exc).__name__}: {str(exc)[:300]}; {SAFE_TO_RESUBMIT}")
        else:
            _end(job, Job.Status.DONE, **outcome)
    job.refresh_from_db()
    return job


def _release(job: Job) -> None:
    """Let go of a job that stays running (best effort: the database may be what failed; then
    the heartbeat goes stale and the sweep resumes the job)."""
    try:
        _save(job, heartbeat_at=None)
    except (OperationalError, InterfaceError):
        pass


def _end(job: Job, status: str, **fields: Any) -> None:
    _save(job, **fields, status=status, finished_at=timezone.now(), heartbeat_at=None)


def _save(job: Job, **fields: Any) -> None:
    # An UPDATE of just these columns: progress from a second connection (the index-build
    # watcher, the heartbeat) must not be overwritten with a stale copy of the whole row.
    Job.objects.filter(pk=job.pk).update(**fields)


@contextmanager
def _heartbeat(job_id: int) -> Iterator[None]:
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(HEARTBEAT_EVERY):
                try:
                    Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(
                        heartbeat_at=timezone.now())
                except (OperationalError, InterfaceError):
                    pass  # the database is away: a missed beat is what the sweep should see
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=beat, name=f"job-{job_id}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=HEARTBEAT_EVERY + 5)


def recover_stalled_jobs() -> int:
    """Jobs 'running' without a live worker: an ingestion whose file is still there is queued
    again and resumes after its last committed batch; anything else is failed with the
    reason. Returns how many jobs it touched."""
    cutoff = timezone.now() - timedelta(seconds=STALLED_AFTER)
    stalled = Job.objects.filter(status=Job.Status.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff))
    touched = 0
    for job in stalled:
        touched += _resume(job) if _resumable(job) else _fail_stalled(job)
    return touched


def _resumable(job: Job) -> bool:
    return (job.kind == Job.Kind.INGEST and bool(job.params.get("path"))
            and Path(job.params["path"]).exists()
            and job.params.get("resumes", 0) < MAX_RESUMES)


def _resume(job: Job) -> int:
    from search.tasks import ingest_job_run

    resumes = job.params.get("resumes", 0) + 1
    moved = Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(
        status=Job.Status.QUEUED, params={**job.params, "resumes": resumes},
        message=f"its worker stopped after row {job.processed}; resuming from there "
                f"(attempt {resumes + 1} of {MAX_RESUMES + 1})")
    if moved:
        ingest_job_run.delay_on_commit(job.pk)
    return moved


def _fail_stalled(job: Job) -> int:
    if job.kind == Job.Kind.INDEX:
        message = ("the worker stopped before finishing; the periodic sweep queues the build "
                   "again and it resumes where it stopped")
    elif job.kind == Job.Kind.INGEST:
        reason = ("it lost its worker too many times" if job.params.get("resumes", 0)
                  >= MAX_RESUMES else "its file is gone")
        message = f"the worker stopped before finishing and {reason}; {SAFE_TO_RESUBMIT}"
    else:
        message = "the worker stopped before finishing"
    return Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(
        status=Job.Status.FAILED, finished_at=timezone.now(), heartbeat_at=None,
        message=message)


fail_stale_jobs = recover_stalled_jobs  # the periodic task's old name
