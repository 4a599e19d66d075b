"""Postgres stopped for longer than the task's retries while an upload is being ingested:
the job resumes after its last committed batch once the database is back, and every row of
the file is in exactly once, with the counts of an uninterrupted run."""

import json
import sys
import time
import urllib.request

import psycopg

from tests.faults.conftest import wait_until

ROWS = 30_000
OUTAGE = 25  # seconds


def _upload(stack, path, token) -> int:
    boundary = "paperscope-faults"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{path.name}\"\r\nContent-Type: application/x-ndjson\r\n\r\n").encode()
    body += path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        stack.url + "/api/v1/ingest", data=body, method="POST",
        headers={"Authorization": f"Token {token}",
                 "Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=60) as reply:
        return json.loads(reply.read())["id"]


def _job(stack, job_id):
    try:
        with psycopg.connect(stack.env["DATABASE_URL"], connect_timeout=2) as conn:
            return conn.execute("SELECT status, processed, stats, message FROM search_job "
                                "WHERE id = %s", [job_id]).fetchone()
    except psycopg.OperationalError:
        return None


def test_an_ingest_survives_a_database_restart(stack, tmp_path):
    # whichever comes first heals it: the task's retry or the stalled-job sweep's resume
    stack.env.update({"STALLED_JOB_SWEEP_INTERVAL": "5", "EMBED_MISSING_INTERVAL": "3600"})
    path = tmp_path / "upload.jsonl"
    path.write_text("\n".join(json.dumps({
        "arxiv_id": f"2504.{i:05d}", "title": f"Sonar paper {i}",
        "abstract": f"Marine debris detection, take {i}."}) for i in range(1, ROWS + 1)) + "\n")
    token = stack.manage("ensure_admin").split("admin API token: ")[1].split()[0]
    stack.start_web()
    celery = [sys.executable, "-m", "celery", "-A", "project"]
    stack.start("worker", [*celery, "worker", "-Q", "ingest,maintenance", "--concurrency", "1"])
    stack.start("beat", [*celery, "beat", "--schedule", str(stack.profile.var_dir / "beat")])
    job_id = _upload(stack, path, token)

    wait_until(lambda: (row := _job(stack, job_id)) and 0 < row[1] < ROWS, 120,
               "ingestion under way", interval=0.1)
    stack.stop_postgres()
    time.sleep(OUTAGE)
    stack.start_postgres()
    back = time.monotonic()

    def finished():
        for process in stack.processes:
            process.check()
        row = _job(stack, job_id)
        return row if row and row[0] in ("done", "failed") else None
    status, processed, stats, message = wait_until(
        finished, 180, f"job finished after the outage:\n{stack.log('worker')}")
    print(f"job {status} {time.monotonic() - back:.1f} s after Postgres was back: {message}")

    assert status == "done", message
    assert (stats["created"], stats["unchanged"], stats["rows"]) == (ROWS, 0, ROWS)
    with psycopg.connect(stack.env["DATABASE_URL"]) as conn:
        count, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT arxiv_id) FROM search_paper").fetchone()
    assert count == distinct == ROWS
