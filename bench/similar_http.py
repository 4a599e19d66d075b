"""`bench similar --http`: "similar" for every aspect and "recommend" over HTTP, at 1 client,
explanations included, against `make run`'s gunicorn (docs/benchmarks.md "Nearest names: cost,
'similar' latency", the HTTP rows).

The server is started here (project.devstack.web_command, like bench e2e) on the database
given; each sampled paper is asked for its similar papers in every aspect (k=10, the shipped
rerank), and each pair of consecutive sampled papers is a recommend request (two positives,
the default aspects). Reported per endpoint: p50 / p95 over the passes, the server's CPU per
request, SQL and Redis round trips per request (project/roundtrips.py).
"""

from __future__ import annotations

import json
import os
import random

from django.conf import settings

from bench.http_load import gunicorn, load, round_trips, warm
from search.models import Paper
from search.selectors import aspect_names


def measure_http(out, *, papers, passes, seed, database_url=None, port=None, **_):
    database_url = database_url or os.environ.get("DATABASE_URL") or (
        "postgresql://{USER}@{HOST}:{PORT}/{NAME}".format(**settings.DATABASES["default"]))
    port = port or int(os.environ.get("PAPERSCOPE_PORT", "8000")) + 7
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": settings.REDIS_URL,
           "ROUND_TRIP_COUNTS": "1", "LOG_LEVEL": "WARNING", "API_THROTTLE_ANON": "100000000/min"}
    random.seed(seed)
    ids = list(Paper.objects.values_list("pk", flat=True))
    picked = random.sample(ids, min(papers, len(ids)))
    aspects = aspect_names()
    endpoints = {a: [("GET", f"/api/v1/papers/{pid}/similar?aspect={a}&k=10", None)
                     for pid in picked] for a in aspects}
    endpoints["recommend"] = [("POST", "/api/v1/recommend", json.dumps(
        {"positive": [a, b], "k": 10}).encode()) for a, b in zip(picked, picked[1:], strict=False)]
    rows = []
    total = Paper.objects.count()
    with gunicorn("paperscope", port, env) as app:
        warm(app, lambda i: endpoints[aspects[i % len(aspects)]][i % len(picked)], 40)
        runs = {name: [] for name in endpoints}
        cpu = dict.fromkeys(endpoints, 0.0)
        for _ in range(passes):  # interleaved: every endpoint sees the same cache state
            for name, requests in endpoints.items():
                run = load(app, requests, clients=1)
                if run.errors:
                    out(f"  {name}: {len(run.errors)} errors, e.g. {run.errors[0]}")
                runs[name].append(run)
                cpu[name] += run.cpu_ms
        for name, requests in endpoints.items():
            latencies = [ms for run in runs[name] for ms in run.latencies_ms]
            merged = runs[name][0]
            merged.latencies_ms, merged.cpu_ms = latencies, cpu[name]
            row = {"endpoint": f"similar?aspect={name}" if name != "recommend" else "recommend",
                   **merged.summary(), **round_trips(app, requests[:10])}
            row.pop("qps", None)
            rows.append(row)
            out(f"  {row['endpoint']:<26} p50 {row['p50_ms']:>6}  p95 {row['p95_ms']:>6}  cpu "
                f"{row['cpu_ms_per_request']:>6} ms/req  sql {row['sql']}  redis {row['redis']}")
    out(f"{total} papers, {len(picked)} sampled x {passes} passes, load {os.getloadavg()}")
    return {"papers": total, "sampled": len(picked), "rows": rows, "load": os.getloadavg()}
