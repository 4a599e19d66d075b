"""A worker killed with SIGKILL in the middle of embedding: restarted by the supervisor (as
under `make run`), and every paper has a current vector in every space soon after, with no
operator action and no duplicate rows."""

import json
import os
import signal
import sys
import time

import psycopg

from tests.faults.conftest import wait_until

PAPERS = 3000
HEAL_WITHIN = 120  # seconds after the kill


def _coverage(stack) -> list[tuple[str, int, int]]:
    with psycopg.connect(stack.env["DATABASE_URL"]) as conn:
        return conn.execute("""
            SELECT s.name, count(e.paper_id) FILTER (WHERE e.content_hash = p.content_hash),
                   (SELECT count(*) FROM search_paper)
            FROM search_embeddingspace s
            LEFT JOIN search_paperembedding e ON e.space_id = s.id
            LEFT JOIN search_paper p ON p.id = e.paper_id
            GROUP BY s.name ORDER BY s.name""").fetchall()


def _duplicates(stack) -> int:
    with psycopg.connect(stack.env["DATABASE_URL"]) as conn:
        return conn.execute("SELECT count(*) FROM (SELECT 1 FROM search_paperembedding "
                            "GROUP BY space_id, paper_id HAVING count(*) > 1) d").fetchone()[0]


def test_a_killed_worker_costs_minutes_at_most(stack, tmp_path):
    stack.env.update({"EMBEDDING_TASK_CHUNK": "16", "EMBED_MISSING_INTERVAL": "5"})
    path = tmp_path / "papers.jsonl"
    path.write_text("\n".join(json.dumps({
        "arxiv_id": f"2504.{i:05d}", "title": f"Sonar paper {i}",
        "abstract": f"We propose method {i} for marine debris detection on dataset {i % 7}."})
        for i in range(1, PAPERS + 1)) + "\n")
    stack.manage("ingest", "--no-progress", str(path))
    celery = [sys.executable, "-m", "celery", "-A", "project"]
    worker = stack.start("worker", [*celery, "worker", "-Q", "ingest,embed,maintenance",
                                    "--concurrency", "1", "--loglevel", "INFO"])
    stack.start("beat", [*celery, "beat", "--schedule", str(stack.profile.var_dir / "beat")])
    stack.manage("embed_missing")

    def some_done():
        done = sum(n for _, n, _ in _coverage(stack))
        return 0 < done < PAPERS * 4 and done
    wait_until(some_done, 60, "embedding started", interval=0.1)

    os.killpg(worker.proc.pid, signal.SIGKILL)
    killed = time.monotonic()
    wait_until(lambda: (worker.check() or worker.restarts) >= 1, 30, "worker restarted")

    def all_current():
        worker.check()
        coverage = _coverage(stack)
        return len(coverage) == 4 and all(n == total for _, n, total in coverage)
    wait_until(all_current, HEAL_WITHIN, f"every paper current in every space:\n"
               f"{stack.log('worker')}")
    print(f"healed {time.monotonic() - killed:.1f} s after the kill")
    assert _duplicates(stack) == 0
