"""The one job runner (search.services.jobs): ingestion jobs and code / index builds share
its states (queued -> running -> done | failed), its progress fields and its ends."""

import shutil

import pytest

from search import services
from search.models import Job, Paper
from search.services.jobs import JobFailed, job_run, job_to_run

pytestmark = pytest.mark.django_db


def seen_while_running(job: Job, progress) -> dict:
    """What the stored job looked like while its work ran."""
    job.refresh_from_db()
    progress(processed=1, total=2, message="half way")
    halfway = Job.objects.get(pk=job.pk)
    return {"status": job.status, "started": job.started_at is not None,
            "progress": (halfway.processed, halfway.total, halfway.message)}


def test_a_job_runs_through_running_to_done_with_the_outcome_of_its_work():
    job = Job.objects.create(kind=Job.Kind.INGEST)
    seen = {}

    def work(progress):
        seen.update(seen_while_running(job, progress))
        return {"processed": 2, "total": 2, "message": "all done", "stats": {"rows": 2}}

    done = job_run(job=job, work=work)

    assert seen == {"status": Job.Status.RUNNING, "started": True,
                    "progress": (1, 2, "half way")}
    assert done.status == Job.Status.DONE and done.message == "all done"
    assert (done.processed, done.total, done.stats) == (2, 2, {"rows": 2})
    assert done.started_at <= done.finished_at


def test_a_failing_job_ends_failed_with_its_message():
    job = Job.objects.create(kind=Job.Kind.INDEX)

    def work(progress):
        progress(processed=3, total=10)
        raise JobFailed("nothing to fit on")

    failed = job_run(job=job, work=work)

    assert failed.status == Job.Status.FAILED and failed.message == "nothing to fit on"
    assert failed.processed == 3 and failed.started_at <= failed.finished_at
    assert job_to_run(job.pk) is None  # a redelivered message does not run it again


def test_an_unexpected_error_leaves_the_job_running_for_the_retry_or_the_stale_sweep():
    job = Job.objects.create(kind=Job.Kind.INGEST)

    def work(progress):
        raise ConnectionError("database restarting")

    with pytest.raises(ConnectionError):
        job_run(job=job, work=work)

    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING and job.finished_at is None
    assert job_to_run(job.pk) == job


def test_an_ingest_job_and_a_code_build_job_go_through_the_same_transitions(fixtures_dir,
                                                                             tmp_path):
    upload = tmp_path / "arxiv-daily-2025-04-01.jsonl"
    shutil.copyfile(fixtures_dir / upload.name, upload)
    ingest = services.ingest_job_create(path=upload, display_name=upload.name)
    space = services.space_for_model()
    assert ingest.status == Job.Status.QUEUED  # the task is sent after commit

    ingest = services.ingest_job_run(job=job_to_run(ingest.pk))
    services.papers_embed(paper_ids=list(Paper.objects.values_list("pk", flat=True)),
                          space=space)  # what the workers do meanwhile
    build = services.space_code_job_create(space=space)
    assert build.status == Job.Status.QUEUED
    build = services.space_code_job_run(job=job_to_run(build.pk))

    for job in (ingest, build):
        assert job.status == Job.Status.DONE, job.message
        assert job.started_at <= job.finished_at
        assert job.processed == job.total == 40 and job.message
        assert job_to_run(job.pk) is None
    assert "40 created" in ingest.message and not upload.exists()
    assert "index ready" in build.message


def test_a_code_build_with_nothing_to_fit_on_fails_with_the_reason():
    space = services.space_for_model()  # no papers, so no vectors
    job = services.space_code_job_create(space=space)

    job = services.space_code_job_run(job=job)

    assert job.status == Job.Status.FAILED
    assert "has no vectors to fit a code on" in job.message and job.finished_at
    assert not services.space_code_job_pending(space)


def test_a_code_build_for_a_deleted_space_fails_saying_so():
    space = services.space_for_model()
    job = services.space_code_job_create(space=space)
    space.delete()

    job = services.space_code_job_run(job=job)

    assert job.status == Job.Status.FAILED and job.message == "the embedding space was deleted"


def test_a_build_left_running_by_a_dead_worker_is_failed_with_a_fitting_message(embedded):
    from datetime import timedelta

    from django.utils import timezone

    long_ago = timezone.now() - timedelta(hours=3)
    build = Job.objects.create(kind=Job.Kind.INDEX, status=Job.Status.RUNNING, started_at=long_ago,
                               params={"space_id": embedded.pk})
    ingest = Job.objects.create(kind=Job.Kind.INGEST, status=Job.Status.RUNNING,
                                started_at=long_ago)

    assert services.fail_stale_jobs() == 2

    build.refresh_from_db(), ingest.refresh_from_db()
    assert build.status == ingest.status == Job.Status.FAILED
    assert "resumes" in build.message and "re-submit the file" in ingest.message
    assert not services.space_code_job_pending(embedded)
