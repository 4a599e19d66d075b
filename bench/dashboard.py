"""The operator dashboard's cost (docs/benchmarks.md "Operator dashboard").

1. What the dashboard reads is recorded first, as in production: two pipeline snapshots (the
   beat task's work, timed) and one recall audit (timed: "a run takes seconds").
2. The latency recorder's cost, side by side: the same semantic searches (first six words of
   random titles, k=10, query encodings cached first as in the web process) run in on / off
   pairs (random order in each pair, --rounds pairs per query) with SEARCH_LATENCY_RECORDING
   on and off; p50 / p95 of each, the difference of the p50s and the median of the pairs'
   differences; the recorder call alone (an append in the process) and the background
   thread's write (one pipelined LPUSH + LTRIM).
3. /dashboard/ rendered through Django's test client as a staff user, --renders times: warm
   (the papers-over-time count cached, as between refreshes) and cold (that cache dropped
   before each render: the worst case, once a minute), and each section's htmx partial.

Runs on the loaded database, or a bench database with --database-url (e.g. the 74.7k one
made by `bench scale-load`). It adds snapshots, an audit run and latency samples there.
"""

from __future__ import annotations

import random
import time

from django.core.cache import cache
from django.core.management.base import CommandError
from django.test import Client, override_settings

from bench.common import machine, ms_stats, percentile, write_json

HELP = "dashboard render p95, and search latency with vs without the per-request recorder"


def add_arguments(parser):
    parser.add_argument("--database-url", default=None,
                        help="a paperscope_bench* database (default: the configured one)")
    # at most 500: the web process caches 512 query vectors, and a re-encoded query (20-40 ms
    # of MiniLM) inside one half of a pair would swamp a 0.1 ms difference
    parser.add_argument("--searches", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3, help="on / off pairs per query")
    parser.add_argument("--renders", type=int, default=40)
    parser.add_argument("--audit-samples", type=int, default=12)
    parser.add_argument("--json", default=None)
    parser.add_argument("--seed", type=int, default=7)


def run(command, *, database_url, searches, rounds, renders, audit_samples, json, seed, **_):
    from pathlib import Path

    if database_url:
        from bench.scale_common import use_database_url

        use_database_url(database_url)
    out = command.stdout.write
    out(f"machine: {machine()}")
    if searches > 500:
        raise CommandError("--searches above 500 would evict cached query vectors (512)")
    results = measure(out, searches=searches, rounds=rounds, renders=renders,
                      audit_samples=audit_samples, seed=seed)
    write_json(Path(json) if json else None, results)


def measure(out, *, searches, rounds, renders, audit_samples, seed):
    from django.contrib.auth import get_user_model

    from search.models import Paper
    from search.operations import audit, latency, pipeline
    from search.operations.dashboard import CORPUS_KEY, SECTIONS
    from search.params import SearchParams
    from search.selectors import active_space, paper_search

    space = active_space()
    if space is None:
        raise CommandError("no active generic space: load and embed a corpus first")
    papers = Paper.objects.count()
    out(f"{papers} papers, active space {space.name}")
    results: dict = {"papers": papers, "space": space.name}

    started = time.perf_counter()
    pipeline.snapshot_take()
    pipeline.snapshot_take()
    results["snapshot_ms"] = round((time.perf_counter() - started) * 500, 1)
    run = audit.recall_audit(samples=audit_samples, seed=seed)
    results["audit"] = {"seconds": run.seconds, "queries": run.queries,
                        "classes": {m.plan_class: {"recall_at_10": m.recall_at_10,
                                                   "queries": m.queries,
                                                   "p50_ms": m.latency_p50_ms}
                                    for m in run.measurements.filter(space=space)}}
    out(f"snapshot: {results['snapshot_ms']} ms each; recall audit: {run.queries} queries in "
        f"{run.seconds} s: " + ", ".join(f"{c} {v['recall_at_10']} (n={v['queries']})"
                                         for c, v in results["audit"]["classes"].items()))

    # --- the recorder, side by side ---------------------------------------------------------
    rng = random.Random(seed)
    titles = list(Paper.objects.order_by("?").values_list("title", flat=True)[:searches])
    queries = [" ".join(t.split()[:6]) for t in titles]
    for q in queries:  # encode once (the web process caches query vectors)
        paper_search(params=SearchParams(query=q, k=10, mode="semantic"))
    timings: dict[str, list[float]] = {"on": [], "off": []}
    for q in queries * rounds:
        order = ["on", "off"] if rng.random() < 0.5 else ["off", "on"]
        for mode in order:
            with override_settings(SEARCH_LATENCY_RECORDING=mode == "on"):
                t0 = time.perf_counter()
                paper_search(params=SearchParams(query=q, k=10, mode="semantic"))
                timings[mode].append((time.perf_counter() - t0) * 1000)
    alone = []  # what a search pays: the sample appended in the process
    for _ in range(2000):
        t0 = time.perf_counter()
        latency.record_search(mode="semantic", plan="hnsw", ms=1.0, short=False)
        alone.append((time.perf_counter() - t0) * 1000)
    from search.operations import redis as ops_redis

    latency.flush()
    ops_redis.client().lpop(ops_redis.key(latency.SAMPLES), 2000)  # not real searches: out
    writes = []  # what the background thread pays per write (one sample, the worst case)
    for _ in range(500):
        t0 = time.perf_counter()
        latency._write([("bench-scratch", "x")])
        writes.append((time.perf_counter() - t0) * 1000)
    ops_redis.client().delete(ops_redis.key("bench-scratch"))
    # each query's own difference (on - off), whose median is robust to a busy machine's
    # drift, unlike the difference of two medians
    paired = [a - b for a, b in zip(timings["on"], timings["off"], strict=True)]
    results["recorder"] = {
        "searches": len(queries), "rounds": rounds,
        "with": ms_stats(timings["on"]), "without": ms_stats(timings["off"]),
        "p50_difference_ms": round(percentile(timings["on"], 50) - percentile(timings["off"], 50), 3),
        "paired_median_difference_ms": round(percentile(paired, 50), 3),
        "call_alone_p50_ms": round(percentile(alone, 50), 4),
        "call_alone_p95_ms": round(percentile(alone, 95), 4),
        "redis_write_p50_ms": round(percentile(writes, 50), 4),
        "redis_write_p95_ms": round(percentile(writes, 95), 4)}
    r = results["recorder"]
    out(f"search with recording: p50 {r['with']['p50_ms']} / p95 {r['with']['p95_ms']} ms; "
        f"without: p50 {r['without']['p50_ms']} / p95 {r['without']['p95_ms']} ms; "
        f"p50 difference {r['p50_difference_ms']} ms, median paired difference "
        f"{r['paired_median_difference_ms']} ms; the recorder call alone p50 "
        f"{r['call_alone_p50_ms']} / p95 {r['call_alone_p95_ms']} ms; the background thread's "
        f"Redis write p50 {r['redis_write_p50_ms']} / p95 {r['redis_write_p95_ms']} ms")

    # --- the page --------------------------------------------------------------------------
    user, _ = get_user_model().objects.get_or_create(username="bench-dashboard",
                                                     defaults={"is_staff": True})
    try:
        client = Client()
        client.force_login(user)

        def timed(path: str, cold: bool) -> float:
            if cold:
                cache.delete(CORPUS_KEY)
            t0 = time.perf_counter()
            response = client.get(path)
            elapsed = (time.perf_counter() - t0) * 1000
            if response.status_code != 200:
                raise CommandError(f"{path} answered {response.status_code}")
            return elapsed

        timed("/dashboard/", cold=False)  # warm the templates and the connection
        page = {"warm": [timed("/dashboard/", cold=False) for _ in range(renders)],
                "cold": [timed("/dashboard/", cold=True) for _ in range(renders)]}
        sections = {name: ms_stats([timed(f"/dashboard/section/{name}/", cold=name == "corpus")
                                    for _ in range(max(5, renders // 2))]) for name in SECTIONS}
    finally:
        user.delete()
    results["page"] = {k: ms_stats(v) for k, v in page.items()}
    results["sections"] = sections
    out(f"/dashboard/ over {renders} renders: warm p50 {results['page']['warm']['p50_ms']} / "
        f"p95 {results['page']['warm']['p95_ms']} ms; cold (papers-over-time recounted) p50 "
        f"{results['page']['cold']['p50_ms']} / p95 {results['page']['cold']['p95_ms']} ms")
    for name, stats in sections.items():
        out(f"  section {name:<9} p50 {stats['p50_ms']:>7} / p95 {stats['p95_ms']:>7} ms"
            + ("  (cold)" if name == "corpus" else ""))
    return results
