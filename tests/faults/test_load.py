"""50 concurrent clients for 30 s against the server `make run` starts: no errors but clean
429s beyond the rate limit, and Postgres' connections stay bounded."""

import threading
import time
import urllib.error
import urllib.request
from collections import Counter

from tests.faults.conftest import peak_connections

ROWS = "tests/fixtures/arxiv-daily-2025-04-01.jsonl"
CLIENTS, SECONDS = 50, 30
PATHS = ["/api/v1/search?q=marine+debris&mode=semantic", "/api/v1/search?q=sonar&mode=keyword",
         "/api/v1/search?q=detection&mode=hybrid&category=cs.CV", "/?q=sonar", "/api/v1/status"]


def test_fifty_clients_get_answers_or_clean_429s(stack):
    stack.env.update({"API_THROTTLE_ANON": "600/min"})  # some clients will hit it
    stack.manage("ingest", "--no-progress", ROWS)
    stack.manage("embed_missing", "--now")
    stack.start_web()
    statuses: Counter = Counter()
    bad: list[str] = []
    stop = time.monotonic() + SECONDS

    def client(n: int) -> None:
        i = n
        while time.monotonic() < stop:
            path = PATHS[i % len(PATHS)]
            i += 1
            try:
                with urllib.request.urlopen(stack.url + path, timeout=30) as reply:
                    statuses[reply.status] += 1
            except urllib.error.HTTPError as error:
                statuses[error.code] += 1
                if error.code != 429 or "Retry-After" not in error.headers:
                    bad.append(f"{error.code} {path}: {error.read()[:200]!r}")
            except OSError as error:
                statuses["connection"] += 1
                bad.append(f"{path}: {error}")

    most_connections = peak_connections(
        stack.env["DATABASE_URL"],
        [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)],
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()", 0.5)
    print(dict(statuses), f"most connections: {most_connections}")

    assert bad == []
    assert statuses[200] > 100
    assert most_connections <= 2 * 4 + 2  # gunicorn workers x threads, plus this probe
