"""Postgres or Redis gone: the API says 503 with a reason, pages say "temporarily
unavailable", search survives Redis, and everything is back once the service is, without a
restart of the web process."""

import time

from tests.faults.conftest import wait_until

ROWS = "tests/fixtures/arxiv-daily-2025-04-01.jsonl"


def test_a_database_outage_is_a_503_with_a_reason_and_heals(stack):
    web = stack.start_web()
    assert stack.get("/api/v1/status").status == 200

    stack.stop_postgres()
    api = stack.get("/api/v1/search?q=sonar")
    page = stack.get("/?q=sonar")

    assert api.status == 503, api.body[:300]
    assert "database" in api.json()["reason"]
    assert int(api.headers["Retry-After"]) > 0
    assert page.status == 503
    assert b"Temporarily unavailable" in page.body and len(page.body) < 5000
    started = time.monotonic()
    stack.start_postgres()
    wait_until(lambda: stack.get("/api/v1/status").status == 200, 30, "API back after restart")
    assert stack.get("/?q=sonar").status == 200
    assert web.restarts == 0 and web.proc.poll() is None  # healed, not restarted
    print(f"healed {time.monotonic() - started:.1f} s after Postgres was back")


def test_search_answers_while_redis_is_down(stack):
    stack.manage("ingest", "--no-progress", ROWS)
    stack.manage("embed_missing", "--now")
    stack.start_web()
    assert stack.get("/api/v1/search?q=marine+debris").json()["count"] > 0

    stack.stop_redis()
    api = stack.get("/api/v1/search?q=marine+debris+sonar&mode=semantic")
    page = stack.get("/?q=marine+debris")

    assert api.status == 200 and api.json()["count"] > 0, api.body[:300]
    assert page.status == 200
    stack.start_redis()
    assert stack.get("/api/v1/search?q=sonar").status == 200
