"""Search latency per mode on the loaded corpus (docs/benchmarks.md "Search latency on the
demo corpus").

Queries are the first six words of random titles (what users type), k=10; every variant runs
on every query in turn. The query encoding is cached first, as in the web process.
"""

from __future__ import annotations

import random
import time

from django.core.management.base import CommandError

from bench.common import percentile
from bench.demo import add_demo_arguments, run_on_demo
from search.embedders import get_encoder
from search.models import Paper
from search.params import SearchFilters, SearchParams
from search.planner import count_matching
from search.selectors import active_space, paper_search

HELP = "search latency p50/p95 per mode (semantic, keyword, hybrid, filtered) on the loaded corpus"


def add_arguments(parser):
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    add_demo_arguments(parser)


def run(command, **options):
    run_on_demo(command, measure, options)


def measure(out, *, queries, k, seed, **_):
    space = active_space()
    if space is None:
        raise CommandError("no active embedding space yet: wait for the worker")
    random.seed(seed)
    papers = list(Paper.objects.values_list("title", "categories"))
    picked = random.sample(papers, min(queries, len(papers)))
    # Queries: the first words of real titles (what users type), and a category filter
    # taken from the same paper for the filtered variant.
    workload = [(" ".join(title.split()[:6]), cats[0] if cats else "") for title, cats in picked]
    variants = {
        "semantic": lambda q, c: SearchParams(query=q, k=k, mode="semantic"),
        "keyword": lambda q, c: SearchParams(query=q, k=k, mode="keyword"),
        "hybrid": lambda q, c: SearchParams(query=q, k=k, mode="hybrid"),
        "semantic+category": lambda q, c: SearchParams(
            query=q, k=k, mode="semantic", filters=SearchFilters(categories=(c,))),
        "hybrid+category": lambda q, c: SearchParams(
            query=q, k=k, mode="hybrid", filters=SearchFilters(categories=(c,))),
    }
    for q, _c in workload:  # encode once: the embedding cache is per process, as in the web
        paper_search(params=SearchParams(query=q, k=1, mode="semantic"))
    latencies: dict[str, list[float]] = {name: [] for name in variants}
    short: dict[str, int] = dict.fromkeys(variants, 0)
    for q, c in workload:
        for name, make in variants.items():
            params = make(q, c)
            started = time.perf_counter()
            result = paper_search(params=params)
            latencies[name].append((time.perf_counter() - started) * 1000)
            # "short" = fewer than min(k, papers matching the filters); keyword search
            # needs every query word, so it is not expected to fill k.
            expected = min(k, count_matching(params.filters, cap=k))
            short[name] += len(result.results) < expected
    total = Paper.objects.count()
    out(f"\nsearch latency over {len(workload)} queries, k={k}, {total} papers, "
                      f"space {space.name} (query encoding cached; ms):")
    out(f"  {'variant':<20} {'p50':>7} {'p95':>7} {'short':>6}  (short: fewer "
                      "than min(k, matching papers))")
    rows = []
    for name, values in latencies.items():
        row = {"variant": name, "p50_ms": round(percentile(values, 50), 2),
               "p95_ms": round(percentile(values, 95), 2), "short_results": short[name]}
        rows.append(row)
        out(f"  {name:<20} {row['p50_ms']:>7} {row['p95_ms']:>7} "
                          f"{short[name]:>6}")
    started = time.perf_counter()
    for q, _ in workload[:50]:
        get_encoder(space.model_name).encode([q + " uncached"])
    encode_ms = (time.perf_counter() - started) * 1000 / min(50, len(workload))
    out(f"  query encoding (uncached): {encode_ms:.1f} ms per query")
    return {"papers": total, "queries": len(workload), "k": k, "rows": rows,
            "query_encode_ms": round(encode_ms, 1)}
