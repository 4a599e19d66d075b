"""halfvec HNSW graph degree (docs/benchmarks.md "Precision modes", "halfvec graph degree").

    python manage.py bench graph --database-url .../paperscope_bench74k --limit-queries 100 --m 16,12,10 --ef 100,150

Rebuilds the halfvec index with each m in turn (same name, so the planner's query uses it) and
measures its size, build time, recall@10 against exact and latency at each ef_search, next to
the float index as built; restores the configured m at the end.
"""

from __future__ import annotations

import statistics
import time

from django.db import connection

from bench.common import ms_stats
from bench.scale_common import (
    K,
    add_scale_arguments,
    exact_ids,
    index_sizes,
    markdown_table,
    recall,
    run_scale,
)
from search import planner, services

HELP = "halfvec HNSW graph degree (m) x ef_search: index size vs recall and latency"


def add_arguments(parser):
    parser.add_argument("--m", default="16,12,10", help="values of m to build, in turn")
    parser.add_argument("--ef", default="100,150", help="ef_search values to measure each at")
    add_scale_arguments(parser)


def run(command, **options):
    run_scale(command, measure, options)


def measure(bench, *, m, ef, limit_queries, **_):
    """Rebuild the halfvec index with each m in turn (same name, so the planner's query
    uses it), measure index size, build time, recall@10 against exact and latency at each
    ef_search, next to the float index as built; restore the configured m at the end."""
    space, queries, total, info = bench.setup(limit_queries)
    truth = [exact_ids(space, v) for v in queries]
    dim, sid = int(space.dimension), int(space.pk)
    name = f"emb_s{sid}_half_hnsw"
    float_size = index_sizes(space)[f"emb_s{sid}_float_hnsw"]
    table, out = [], []

    def measure(label, precision, ef_search, size, build_s):
        ms, rec = [], []
        for v, t in zip(queries, truth, strict=True):
            t0 = time.perf_counter()
            got = [pid for pid, _ in planner.index_scan(
                space, v, K, "TRUE", [], precision=precision, iterative=False,
                ef_search=ef_search)]
            ms.append((time.perf_counter() - t0) * 1000)
            rec.append(recall(got, t))
        row = {"index": label, "ef_search": ef_search, "recall@10": round(statistics.mean(rec), 4),
               **ms_stats(ms), "index_mib": round(size / 2**20, 1),
               "x_float": round(size / float_size, 3), "build_s": build_s}
        out.append(row)
        table.append([label, ef_search, f"{row['recall@10']:.4f}", row["p50_ms"],
                      row["p95_ms"], row["index_mib"], f"{row['x_float']:.3f}", build_s])

    efs = [int(e) for e in ef.split(",")]
    for e in efs:
        measure("float m=16", "float", e, float_size, "-")
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '8GB'")
        cursor.execute("SET max_parallel_maintenance_workers = 2")
        for m_value in [int(x) for x in m.split(",")]:
            cursor.execute(f"DROP INDEX IF EXISTS {name}")
            t0 = time.perf_counter()
            cursor.execute(
                f"CREATE INDEX {name} ON search_paperembedding USING hnsw "
                f"((embedding_half::halfvec({dim})) halfvec_cosine_ops) "
                f"WITH (m = {m_value}) WHERE space_id = {sid}")
            build_s = round(time.perf_counter() - t0, 1)
            size = index_sizes(space)[name]
            bench.out(f"  halfvec m={m_value}: {size / 2**20:.1f} MiB in {build_s} s")
            for e in efs:
                measure(f"halfvec m={m_value}", "halfvec", e, size, build_s)
        cursor.execute(f"DROP INDEX IF EXISTS {name}")
    services.space_ensure_indexes(space=space)  # back to the configured m
    bench.say(f"\nhalfvec HNSW graph degree ({len(queries)} queries, k={K}; recall@10 vs "
             "exact; float index as loaded, m=16; ef_construction 64):")
    bench.say(markdown_table(["index", "ef_search", "recall@10", "p50 ms", "p95 ms",
                             "index MiB", "x float", "build s"], table))
    return {"rows": out}
