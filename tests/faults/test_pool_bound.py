"""20 concurrent clients over search, paper and similar against the server `make run` starts:
no errors, and Postgres never sees more connections than the pools allow (workers x
DB_POOL_MAX), nor more than the max_connections devstack computed; and a request that cannot
get a connection in time is a 503 that says why."""

import threading
import time
import urllib.error
import urllib.request
from collections import Counter

import psycopg

from project.capacity import capacity
from tests.faults.conftest import peak_connections

ROWS = "tests/fixtures/arxiv-daily-2025-04-01.jsonl"
CLIENTS, REQUESTS_EACH = 20, 12
# the defaults' shape (a pool of one connection per thread), 2 processes
SIZES = {"WEB_WORKERS": "2", "WEB_THREADS": "4", "API_THROTTLE_ANON": "100000/min"}


def test_twenty_clients_within_the_pool_bound(stack, monkeypatch):
    for name, value in SIZES.items():  # web_command reads them here, the server in its env
        monkeypatch.setenv(name, value)
    stack.env.update(SIZES)
    sizes = capacity()
    stack.manage("ingest", "--no-progress", ROWS)
    stack.manage("embed_missing", "--now")
    with psycopg.connect(stack.env["DATABASE_URL"], autocommit=True) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM search_paper ORDER BY id LIMIT 10")]
        max_connections = int(conn.execute("SHOW max_connections").fetchone()[0])
    paths = ["/api/v1/search?q=marine+debris&mode=semantic",
             "/api/v1/search?q=sonar&mode=keyword",
             "/api/v1/search?q=detection&mode=hybrid&category=cs.CV",
             *[f"/api/v1/papers/{pid}" for pid in ids[:3]],
             *[f"/api/v1/papers/{pid}/similar?aspect=generic" for pid in ids[3:6]]]
    stack.start_web()
    statuses: Counter = Counter()
    bad: list[str] = []

    def client(n: int) -> None:
        for i in range(REQUESTS_EACH):
            path = paths[(n + i) % len(paths)]
            try:
                with urllib.request.urlopen(stack.url + path, timeout=60) as reply:
                    statuses[reply.status] += 1
            except urllib.error.HTTPError as error:
                statuses[error.code] += 1
                bad.append(f"{error.code} {path}: {error.read()[:200]!r}")
            except OSError as error:
                bad.append(f"{path}: {error}")

    most = peak_connections(
        stack.env["DATABASE_URL"],
        [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)],
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
        "AND pid <> pg_backend_pid()", 0.05)
    print(dict(statuses), f"most web connections: {most}, max_connections {max_connections}")

    assert bad == []
    assert statuses[200] == CLIENTS * REQUESTS_EACH
    assert max_connections >= sizes.max_connections  # devstack started Postgres with it
    # 20 clients, 8 threads: never more than the pools' 2 x 4 (the old runserver: one per client)
    assert 0 < most <= sizes.web_workers * sizes.pool_max == 8


def test_a_request_that_cannot_get_a_connection_is_a_503_with_the_reason(stack, monkeypatch):
    sizes = {"WEB_WORKERS": "1", "WEB_THREADS": "4", "DB_POOL_MAX": "1", "DB_POOL_MIN": "1",
             "DB_POOL_TIMEOUT": "1", "API_THROTTLE_ANON": "100000/min"}
    for name, value in sizes.items():
        monkeypatch.setenv(name, value)
    stack.env.update(sizes)
    stack.manage("ingest", "--no-progress", ROWS)
    stack.start_web()
    assert stack.get("/api/v1/search?q=sonar&mode=keyword").status == 200
    replies: list = []
    with psycopg.connect(stack.env["DATABASE_URL"]) as conn:
        # the one pooled connection's request waits on this lock; the others wait for it
        conn.execute("LOCK TABLE search_paper IN ACCESS EXCLUSIVE MODE")
        threads = [threading.Thread(target=lambda: replies.append(
            stack.get("/api/v1/search?q=sonar&mode=keyword", timeout=30))) for _ in range(3)]
        for thread in threads:
            thread.start()
        time.sleep(3)  # > DB_POOL_TIMEOUT: the two waiting for a connection have given up
        conn.rollback()  # releases the lock
    for thread in threads:
        thread.join()
    statuses = sorted(r.status for r in replies)
    assert statuses == [200, 503, 503]
    refused = next(r for r in replies if r.status == 503)
    assert "connection" in refused.json()["reason"] and refused.headers["Retry-After"]
    assert stack.get("/api/v1/search?q=sonar&mode=keyword").status == 200  # and it recovers
