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
    assert "resumes" in build.message and "re-submitting the file is safe" in ingest.message
    assert not services.space_code_job_pending(embedded)


def _papers_file(tmp_path, n: int):
    import json

    path = tmp_path / "upload.jsonl"
    path.write_text("\n".join(json.dumps({"arxiv_id": f"2504.{i:05d}", "title": f"Paper {i}",
                                          "abstract": f"About sonar {i}."})
                              for i in range(1, n + 1)) + "\n")
    return path


def test_a_job_that_lost_its_database_resumes_after_its_last_batch_with_exact_counts(
        tmp_path, monkeypatch):
    """Batch 2 of 3 fails as if Postgres shut down (a trigger raises SQLSTATE 57P01, which
    the driver reports as a lost server); the sweep resumes the job and it ends with every row
    in once and the counts of one uninterrupted run."""
    from datetime import timedelta

    from django.db import OperationalError, connection
    from django.utils import timezone

    from search.services import papers as papers_service
    from search.services.jobs import recover_stalled_jobs

    monkeypatch.setattr(papers_service, "INGEST_BATCH", 500)
    job = services.ingest_job_create(path=_papers_file(tmp_path, 1200), display_name="upload")
    with connection.cursor() as cursor:
        cursor.execute("""
            CREATE FUNCTION fail_like_a_shutdown() RETURNS trigger AS $$ BEGIN
              RAISE EXCEPTION 'terminating connection' USING ERRCODE = '57P01';
            END $$ LANGUAGE plpgsql;
            CREATE TRIGGER shutdown_on_700 BEFORE INSERT ON search_paper FOR EACH ROW
              WHEN (NEW.arxiv_id = '2504.00700') EXECUTE FUNCTION fail_like_a_shutdown();""")

    with pytest.raises(OperationalError):
        services.ingest_job_run(job=job_to_run(job.pk))

    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING and job.stats["last_line"] == 500
    assert Paper.objects.count() == 500
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER shutdown_on_700 ON search_paper")
    # the task's retries ran out meanwhile (nothing claimed it): no heartbeat for two minutes
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=2))

    assert recover_stalled_jobs() == 1
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED and "resuming" in job.message
    done = services.ingest_job_run(job=job_to_run(job.pk))

    assert done.status == Job.Status.DONE
    assert (done.stats["created"], done.stats["unchanged"], done.stats["rows"]) == (1200, 0, 1200)
    assert not (tmp_path / "upload.jsonl").exists()  # kept until the job ended, then removed
    assert Paper.objects.count() == 1200


def test_a_job_whose_work_has_a_bug_fails_at_once_saying_resubmitting_is_safe(tmp_path):
    job = Job.objects.create(kind=Job.Kind.INGEST)

    def work(progress):
        raise RecursionError("maximum recursion depth exceeded")

    ended = job_run(job=job, work=work)

    assert ended.status == Job.Status.FAILED and ended.finished_at is not None
    assert "RecursionError" in ended.message and "re-submitting the file is safe" in ended.message


def test_a_running_job_with_a_live_heartbeat_is_not_claimed_twice():
    from django.utils import timezone

    job = Job.objects.create(kind=Job.Kind.INGEST, status=Job.Status.RUNNING,
                             started_at=timezone.now(), heartbeat_at=timezone.now())

    assert job_to_run(job.pk) is None
    assert services.recover_stalled_jobs() == 0
