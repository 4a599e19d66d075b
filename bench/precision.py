"""Precision modes at scale (docs/benchmarks.md "Precision modes").

    python manage.py bench precision --database-url .../paperscope_bench74k

Exact / float / halfvec / binary / ternary HNSW (+ rerank at several oversamples), the
planner's default, pgvector by hand (bench/scale_peers.py) and an in-process peer (faiss
HNSWFlat): recall@10 against exact, QPS and p50 / p95 with one client
(modes interleaved per query) and with concurrent clients, index sizes and build costs. Builds
the ternary code first if the bench database lacks it.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from django.db import connection

from bench.common import ms_stats
from bench.scale_common import (
    K,
    add_scale_arguments,
    exact_ids,
    index_sizes,
    load_info_path,
    markdown_table,
    recall,
    rss_kib,
    run_concurrent,
    run_interleaved,
    run_scale,
)
from bench.scale_peers import pgvector_by_hand
from search import planner, services
from search.params import SearchFilters

HELP = "precision modes at scale: exact / float / halfvec / binary / ternary HNSW + faiss peer"


def add_arguments(parser):
    parser.add_argument("--clients", default="1,4")
    parser.add_argument("--no-peer", action="store_true")
    add_scale_arguments(parser)


def run(command, **options):
    run_scale(command, measure, options)


def measure(bench, *, seed, limit_queries, clients, no_peer, **_):
    space, queries, total, info = bench.setup(limit_queries)
    if f"emb_s{space.pk}_code_hnsw" not in index_sizes(space):
        bench.say("building the ternary code (fit, encode every vector, index) ...")
        t0 = time.perf_counter()
        code_builds = bench.build_indexes(
            space, build=lambda: services.space_build_code(space=space))
        for b in code_builds:
            b["with_fit_and_encoding_s"] = round(time.perf_counter() - t0, 1)
        info["builds"] = [*info.get("builds", []), *code_builds]
        load_info_path().write_text(json.dumps(info, indent=2))
        space.refresh_from_db()
    modes = precision_modes(space)
    bench.warm_up(space, queries)
    plans = {name: explain_root(space, queries[0], name) for name in modes}
    truth = [exact_ids(space, v) for v in queries]
    results: dict[str, dict[str, Any]] = {name: {} for name in modes}
    for n_clients in [int(c) for c in clients.split(",")]:
        if n_clients == 1:
            runs = run_interleaved(modes, queries)
        else:
            runs = {name: run_concurrent(fn, queries, n_clients) for name, fn in modes.items()}
        for name, (ids, ms, wall) in runs.items():
            results[name][f"c{n_clients}"] = {
                "qps": round(len(ms) / wall, 1), **ms_stats(ms),
                "recall@10": round(statistics.mean(recall(g, t) for g, t in zip(ids, truth, strict=True)), 4)}
        bench.out(f"  {n_clients} client(s) done")
    sizes = index_sizes(space)
    builds = {b["index"]: b for b in info.get("builds", [])}
    peer = None if no_peer else peer_engine(space, queries, truth,
                                            [int(c) for c in clients.split(",")])
    return report_precision(bench, modes, results, sizes, builds, plans, peer, clients)


def report_precision(bench, modes, results, sizes, builds, plans, peer, clients):
    client_list = [int(c) for c in clients.split(",")]
    index_of = {"float": "float_hnsw", "halfvec": "half_hnsw", "binary": "bit_hnsw",
                "ternary": "code_hnsw", "pgvector": "float_hnsw", "planner": "half_hnsw"}
    float_size = next((v for k, v in sizes.items() if k.endswith("float_hnsw")), None)
    headers = ["mode", "recall@10"]
    for c in client_list:
        headers += [f"QPS c{c}", f"p50 c{c}", f"p95 c{c}"]
    headers += ["index MiB", "x float", "build s", "build RSS MiB", "plan"]
    table, rows = [], []
    for name in modes:
        suffix = next((v for k, v in index_of.items() if name.startswith(k)), None)
        idx = next((k for k in sizes if suffix and k.endswith(suffix)), None)
        size = sizes.get(idx)
        build = builds.get(idx, {})
        first = results[name][f"c{client_list[0]}"]
        row = [name, f"{first['recall@10']:.4f}"]
        for c in client_list:
            r = results[name][f"c{c}"]
            row += [r["qps"], r["p50_ms"], r["p95_ms"]]
        row += [round(size / 2**20, 1) if size else "-",
                f"{size / float_size:.3f}" if size and float_size else "-",
                build.get("build_s", "-"), build.get("backend_peak_rss_mib", "-"),
                plans[name]]
        table.append(row)
        rows.append({"mode": name, **results[name], "index": idx, "index_bytes": size,
                     "build": build, "plan": plans[name]})
    if peer:
        row = [peer["name"], f"{peer['c1']['recall@10']:.4f}"]
        for c in client_list:
            r = peer[f"c{c}"]
            row += [r["qps"], r["p50_ms"], r["p95_ms"]]
        row += [round(peer["index_bytes"] / 2**20, 1),
                f"{peer['index_bytes'] / float_size:.3f}" if float_size else "-",
                peer["build_s"], peer["rss_delta_mib"], "in-process"]
        table.append(row)
    bench.say("\nprecision modes (recall@10 vs exact; latency in ms; c1 = 1 client interleaved "
             "per query, c4 = 4 concurrent clients each with its own connection, one mode at "
             "a time; build RSS = peak RSS of the building Postgres backend, for the peer "
             "engine the growth of this process):")
    bench.say(markdown_table(headers, table))
    return {"rows": rows, "peer": peer, "index_sizes": sizes}


def precision_modes(space) -> dict[str, Callable[[np.ndarray], list[int]]]:
    def index(precision, oversample=None):
        def run(v):
            return [pid for pid, _ in planner.index_scan(
                space, v, K, "TRUE", [], precision=precision, iterative=False,
                oversample=oversample)]
        return run

    def by_hand(ef):
        return lambda v: pgvector_by_hand(space, v, K, SearchFilters(), ef)

    return {
        "exact": lambda v: exact_ids(space, v),
        "planner (default: halfvec)": lambda v: [pid for pid, _ in planner.vector_ranking(
            space=space, vector=v, k=K, filters=SearchFilters())[0]],
        "pgvector by hand, ef 40": by_hand(40),
        "pgvector by hand, ef 64": by_hand(64),
        "pgvector by hand, ef 100": by_hand(100),
        "float HNSW": index("float"),
        "halfvec HNSW + float rescore": index("halfvec"),
        "binary HNSW + rerank x10": index("binary", 10),
        "binary HNSW + rerank x20": index("binary", 20),
        "binary HNSW + rerank x40": index("binary", 40),
        "ternary HNSW + rerank x4": index("ternary", 4),
        "ternary HNSW + rerank x10": index("ternary", 10),
        "ternary HNSW + rerank x20": index("ternary", 20),
    }


def explain_root(space, vector, mode: str) -> str:
    """Which index the mode's query actually uses (checks the partial index is matched)."""
    captured: list[str] = []

    def grab(execute, sql, params, many, context):
        if "ORDER BY" in sql and "LIMIT" in sql and "EXPLAIN" not in sql:
            # the planner's scans send their SET LOCALs in front of the query (one message)
            sets, _, query = sql.rpartition("; ") if sql.startswith("SET LOCAL") else ("", "", sql)
            with connection.cursor() as c:
                c.execute((sets + "; " if sets else "") + "EXPLAIN " + query, params)
                while c.description is None and c.nextset():
                    pass
                plan = "\n".join(r[0] for r in c.fetchall())
            used = [w for w in plan.split() if w.startswith("emb_s")]
            captured.append(used[0] if used else ("Seq Scan" if "Seq Scan" in plan else "other"))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(grab):
        precision_modes(space)[mode](vector)
    return captured[-1] if captured else "?"


def peer_engine(space, queries, truth, client_list):
    """faiss IndexHNSWFlat (M=16, efConstruction=64, efSearch=100: pgvector's defaults) on the
    same vectors, inner product on unit vectors = cosine."""
    import faiss

    from bench.scale_peers import read_vectors

    ids, vectors = read_vectors(space)
    rss_before = rss_kib(os.getpid())
    faiss.omp_set_num_threads(2)
    index = faiss.IndexHNSWFlat(vectors.shape[1], 16, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 64
    t0 = time.perf_counter()
    index.add(vectors)
    build_s = time.perf_counter() - t0
    rss_delta = (rss_kib(os.getpid()) - rss_before) / 1024
    index.hnsw.efSearch = 100
    faiss.omp_set_num_threads(1)  # one thread per client, as a server would run it
    size = len(faiss.serialize_index(index))
    del vectors

    def search(v):
        _, found = index.search(np.ascontiguousarray(v[None, :], dtype=np.float32), K)
        return [int(ids[j]) for j in found[0] if j >= 0]

    out = {"name": "faiss HNSWFlat (peer)", "build_s": round(build_s, 1),
           "rss_delta_mib": round(rss_delta), "index_bytes": size}
    for c in client_list:
        if c == 1:
            found, ms, wall = run_interleaved({"faiss": search}, queries)["faiss"]
        else:
            found, ms, wall = run_concurrent(search, queries, c)
        out[f"c{c}"] = {"qps": round(len(ms) / wall, 1), **ms_stats(ms),
                        "recall@10": round(statistics.mean(
                            recall(g, t) for g, t in zip(found, truth, strict=True)), 4)}
    return out
