"""`GET /api/v1/search` end to end over HTTP, Paperscope vs a minimal peer (docs/benchmarks.md
"End to end (bench e2e)").

Both are served by `make run`'s gunicorn command (project.devstack.web_command: the same
WEB_WORKERS x WEB_THREADS), started here on their own ports against the same database:
Paperscope (project.wsgi, with its middleware, DRF, throttle, cache, planner) and
bench/e2e_peer.py (a bare WSGI callable: the same int8 encoder, pgvector by hand, the same
keyword SQL and RRF). Per variant (semantic / keyword / hybrid, with and without a category
filter) and client count (1, 4), the two run one after the other on the same number of
uncached queries: every request a query string neither server has seen (the first words of
Papers with Code titles, not in either corpus and never used to tune search), so every
semantic request encodes. Reported: p50 / p95 latency, QPS, the server processes' CPU per
request (utime + stime of gunicorn's master and workers from /proc, before and after), and for
Paperscope the SQL statements and Redis round trips per request (ROUND_TRIP_COUNTS=1,
project/roundtrips.py; counted in a separate pass).

    python manage.py bench e2e                       # the demo corpus (4.3k)
    python manage.py bench e2e --database-url .../paperscope_bench74k
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from urllib.parse import urlencode

import psycopg
from django.conf import settings

from bench.common import DATA, log, machine, write_json
from bench.http_load import gunicorn, load, round_trips, warm

HELP = "search over HTTP end to end: Paperscope under make run's gunicorn vs a minimal WSGI peer"
MODES = ("semantic", "keyword", "hybrid")


def add_arguments(parser):
    parser.add_argument("--database-url", default=None,
                        help="serve this database (default: the configured one)")
    parser.add_argument("--requests", type=int, default=60,
                        help="requests per variant, server and client count")
    parser.add_argument("--clients", default="1,4")
    parser.add_argument("--category", default="cs.LG", help="the filter of the +category rows")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PAPERSCOPE_PORT", "8000")) + 5,
                        help="Paperscope's port; the peer gets the next one")
    parser.add_argument("--out", type=Path, default=Path("var/bench/e2e.json"))


def held_out_queries() -> list[str]:
    """Distinct queries a user might type: the first five words of each Papers with Code
    title (2.6k; neither corpus holds these papers)."""
    path = DATA / "pwc-tasks" / "pwc_valid.jsonl.gz"
    seen, out = set(), []
    with gzip.open(path, "rt") as rows:
        for line in rows:
            words = json.loads(line)["title"].split()[:5]
            query = " ".join(w.strip(":,.()") for w in words)
            if query.lower() not in seen and len(words) >= 3:
                seen.add(query.lower())
                out.append(query)
    return out


def run(command, **options):
    database_url = options["database_url"] or os.environ.get("DATABASE_URL") or (
        "postgresql://{USER}@{HOST}:{PORT}/{NAME}".format(**settings.DATABASES["default"]))
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": settings.REDIS_URL,
           "ROUND_TRIP_COUNTS": "1", "LOG_LEVEL": "WARNING",
           # the throttle runs (its Redis call is part of the cost) but never refuses
           "API_THROTTLE_ANON": "100000000/min", "SEARCH_LATENCY_RECORDING": "1"}
    clients = [int(c) for c in options["clients"].split(",")]
    queries = held_out_queries()
    per = options["requests"]
    variants = [(mode, cat) for mode in MODES for cat in ("", options["category"])]
    needed = len(variants) * len(clients) * (per + 8) + 400
    if len(queries) < needed:
        raise SystemExit(f"{len(queries)} distinct queries, {needed} needed: lower --requests")
    with psycopg.connect(database_url) as conn:
        papers = conn.execute("SELECT count(*) FROM search_paper").fetchone()[0]
    log(f"e2e: {papers} papers in {database_url.rsplit('/', 1)[1]}, {per} requests per variant")
    port = options["port"]
    results: dict = {"machine": machine(), "load_before": os.getloadavg(),
                     "database": database_url.rsplit("/", 1)[1], "papers": papers,
                     "variants": []}

    def paths(prefix: str, mode: str, cat: str, chunk: list[str]):
        return [("GET", f"{prefix}?" + urlencode(
            {"q": q, "mode": mode, "k": 10, **({"category": cat} if cat else {})}), None)
                for q in chunk]

    with gunicorn("paperscope", port, env) as app, \
            gunicorn("peer", port + 1, env, app="bench.e2e_peer:application") as peer:
        warmup = queries[-400:]
        for server, prefix in ((app, "/api/v1/search"), (peer, "/search")):
            warm(server, lambda i, p=prefix: paths(p, MODES[i % 3], "" if i % 2 else options[
                "category"], [warmup[200 + i]])[0], 200)
        used = 0
        for n_clients in clients:
            for mode, cat in variants:
                # a few unseen queries of this variant first, untimed (lazy per-plan work
                # in either server: the first timed row was inflated without it)
                for server, prefix in ((app, "/api/v1/search"), (peer, "/search")):
                    load(server, paths(prefix, mode, cat, queries[used:used + 8]), 1)
                used += 8
                chunk = queries[used:used + per]
                used += per
                row = {"mode": mode, "category": cat or "-", "clients": n_clients}
                # the same queries for both: neither has seen them (separate processes)
                row["paperscope"] = load(app, paths("/api/v1/search", mode, cat, chunk),
                                         n_clients).summary()
                row["peer"] = load(peer, paths("/search", mode, cat, chunk), n_clients).summary()
                if n_clients == clients[0]:
                    # another set of unseen queries, counted at the drivers
                    row["round_trips"] = round_trips(app, paths(
                        "/api/v1/search", mode, cat, warmup[100 + 10 * MODES.index(mode):][:10]
                        if not cat else warmup[150 + 10 * MODES.index(mode):][:10]))
                a, p = row["paperscope"], row["peer"]
                row["ratio"] = {key: round(a[key] / p[key], 2) if a[key] and p[key] else None
                                                for key in ("p50_ms", "p95_ms", "qps", "cpu_ms_per_request",
                                            "db_cpu_ms_per_request")}
                results["variants"].append(row)
                log(f"{n_clients}c {mode:8} {cat or '-':6} app p50 {a['p50_ms']} p95 "
                    f"{a['p95_ms']} qps {a['qps']} cpu {a['cpu_ms_per_request']} | peer p50 "
                    f"{p['p50_ms']} p95 {p['p95_ms']} qps {p['qps']} cpu "
                    f"{p['cpu_ms_per_request']} | rt {row.get('round_trips', {}).get('sql')} sql "
                    f"{row.get('round_trips', {}).get('redis')} redis | errors "
                    f"{a['errors']}/{p['errors']}")
    results["load_after"] = os.getloadavg()
    write_json(options["out"], results)
    print(table(results))


def table(results: dict) -> str:
    lines = [results["machine"], f"load average before {results['load_before']}, after "
             f"{results['load_after']}; database {results['database']} "
             f"({results.get('papers')} papers)", "",
             "| clients | mode | category | p50 ms (peer) | p95 ms (peer) | QPS (peer) | "
             "web CPU ms/req (peer) | Postgres CPU ms/req (peer) | ratio p50 / CPU / QPS | "
             "SQL, Redis per req |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in results["variants"]:
        a, p, r = row["paperscope"], row["peer"], row["ratio"]
        trips = row.get("round_trips")
        counted = f"{trips['sql']}, {trips['redis']}" if trips else ""
        lines.append(
            f"| {row['clients']} | {row['mode']} | {row['category']} | {a['p50_ms']} "
            f"({p['p50_ms']}) | {a['p95_ms']} ({p['p95_ms']}) | {a['qps']} ({p['qps']}) | "
            f"{a['cpu_ms_per_request']} ({p['cpu_ms_per_request']}) | "
            f"{a['db_cpu_ms_per_request']} ({p['db_cpu_ms_per_request']}) | {r['p50_ms']} / "
            f"{r['cpu_ms_per_request']} / {r['qps']} | "
            f"{counted} |")
    return "\n".join(lines)
