"""(Re)create and fill a benchmark database (docs/benchmarks.md "Filtered search", "Precision
modes": their 74.7k and 1M databases).

    DATABASE_URL=postgresql://postgres@127.0.0.1:54329/paperscope_bench74k \\
        python manage.py bench scale-load --size 74728

DROPs and CREATEs the database named by --database-url / DATABASE_URL (it must be called
paperscope_bench*), migrates it, COPYs the real arxiv-daily papers with their reference vectors
(minus held-out query papers, saved to var/bench/) plus synthetic papers up to --size
(bench/scale_data.py), then builds the HNSW indexes one by one with space_ensure_indexes,
timing each.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import numpy as np
from django.core.management import call_command
from django.db import connection, transaction

from bench import scale_data
from bench.scale_common import (
    MODEL_NAME,
    SPACE_NAME,
    add_scale_arguments,
    db_name,
    load_info_path,
    queries_path,
    run_scale,
)
from search.embedders import content_hash
from search.models import EmbeddingSpace

HELP = "(re)create and fill a paperscope_bench* database: real papers + synthetic ones up to --size"

# The columns the loader writes into search_paper, in the order of paper_row(). Every NOT NULL
# column without a database default must be here: Django's defaults live in Python, so a
# column a migration adds (the concepts of search 0008) fails the COPY until it is added here
# (tests/bench/test_scale_load.py runs this COPY against the migrated test database).
PAPER_COLUMNS = ("id", "arxiv_id", "source_url", "title", "abstract", "authors", "categories", "venue",
                 "published", "first_seen", "tasks", "methods", "datasets", "concepts",
                 "concepts_version", "content_hash", "created_at", "updated_at")
EMBEDDING_COLUMNS = ("paper_id", "space_id", "embedding", "embedding_half", "embedding_bit",
                     "content_hash", "computed_at")


def add_arguments(parser):
    parser.add_argument("--size", type=int, required=True,
                        help="74728 (the real corpus) or more (adds synthetic papers)")
    parser.add_argument("--queries", type=int, default=None,
                        help="held-out query papers (default 200, or 100 above 100k)")
    add_scale_arguments(parser)


def run(command, **options):
    run_scale(command, measure, options, describe_machine=False)


def measure(bench, *, size, queries, seed, **_):
    started = time.perf_counter()
    real = scale_data.load_real()
    n_queries = queries or (200 if size <= 100_000 else 100)
    held = scale_data.held_out(len(real), n_queries, seed)
    keep = np.setdiff1d(np.arange(len(real)), held)
    n_synthetic = max(0, size - len(keep)) if size > len(real) else 0
    bench.out(f"real papers {len(real)}, held out {len(held)} as queries, "
                      f"indexed real {len(keep)}, synthetic {n_synthetic}")
    recreate_database()
    np.savez(queries_path(), vectors=real.vectors[held], arxiv_ids=real.ids[held])
    space = EmbeddingSpace.objects.create(
        name=SPACE_NAME, model_name=MODEL_NAME, model_version="reference-npz",
        dimension=real.vectors.shape[1], aspect="generic", is_active=True)
    t0 = time.perf_counter()
    copy_real(bench, real, keep, space)
    if n_synthetic:
        copy_synthetic(bench, real, keep, n_synthetic, space, seed)
    copy_s = time.perf_counter() - t0
    with connection.cursor() as cursor:
        cursor.execute("SELECT setval('search_paper_id_seq', (SELECT max(id) FROM search_paper))")
        t0 = time.perf_counter()
        cursor.execute("VACUUM ANALYZE search_paper")
        cursor.execute("VACUUM ANALYZE search_paperembedding")
        vacuum_s = time.perf_counter() - t0
    builds = bench.build_indexes(space)
    info = {"database": db_name(), "size": size, "indexed": len(keep) + n_synthetic,
            "real_indexed": len(keep), "synthetic": n_synthetic, "queries": len(held),
            "copy_s": round(copy_s, 1), "vacuum_analyze_s": round(vacuum_s, 1),
            "builds": builds, "total_s": round(time.perf_counter() - started, 1),
            "loaded_at": datetime.now(UTC).isoformat()}
    load_info_path().write_text(json.dumps(info, indent=2))
    bench.out(json.dumps(info, indent=2))
    return info


def recreate_database() -> None:
    """DROP + CREATE the bench database, then migrate it (its name checked by use_database_url)."""
    import psycopg

    name = db_name()
    connection.close()
    params = {k.lower(): v for k, v in connection.settings_dict.items()
              if k in ("HOST", "PORT", "USER", "PASSWORD") and v}
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    call_command("migrate", verbosity=0)


def copy_real(bench, real, keep: np.ndarray, space: EmbeddingSpace) -> None:
    """Papers 1..len(keep) are the real ones (paper id = row position + 1)."""
    rows = []
    for pid, i in enumerate(keep, start=1):
        rows.append((pid, str(real.ids[i]), f"https://arxiv.org/abs/{real.ids[i]}",
                     real.titles[i], real.abstracts[i], real.authors[i], real.categories[i],
                     real.dates[i], content_hash(real.titles[i], real.abstracts[i])))
    copy_papers(rows, real.vectors[keep], space)
    bench.out(f"  copied {len(rows)} real papers")


def copy_synthetic(bench, real, keep, n: int, space, seed: int) -> None:
    t0 = time.perf_counter()
    synth = scale_data.Synthesizer(real, keep, seed)
    bench.out(f"  synthesizer fitted in {time.perf_counter() - t0:.0f}s")
    next_id = len(keep) + 1
    for chunk in synth.chunks(n):
        rows = []
        for j, src in enumerate(chunk.sources):
            pid = next_id + j
            title = f"Synthetic paper {pid} near arXiv {real.ids[src]}"
            abstract = f"Drawn near the vector of {real.titles[src][:120]}"
            rows.append((pid, f"syn{pid:08d}", "", title, abstract, chunk.authors[j],
                         real.categories[src], chunk.dates[j], content_hash(title, abstract)))
        copy_papers(rows, chunk.vectors, space)
        next_id += len(rows)
        bench.out(f"  copied {next_id - 1 - len(keep)}/{n} synthetic papers "
                          f"({time.perf_counter() - t0:.0f}s)")


def paper_row(pid, arxiv, url, title, abstract, authors, cats, day, chash, now) -> tuple:
    """One search_paper row in PAPER_COLUMNS order (no labels, no concepts: the bench measures
    vector search; `refresh_concepts` can fill them afterwards)."""
    return (pid, arxiv, url, title, abstract, authors, cats, "", day, day, [], [], [], [], "", chash, now, now)


def copy_papers(rows: list[tuple], vectors: np.ndarray, space: EmbeddingSpace) -> None:
    """COPY one batch of papers (id, arxiv id, url, title, abstract, authors, categories, date,
    content hash) and their vectors (vector, halfvec and bit literals)."""
    floats, bits = scale_data.vector_literals(vectors), scale_data.bit_literals(vectors)
    now = datetime.now(UTC)
    connection.ensure_connection()
    with transaction.atomic(), connection.connection.cursor() as cur:
        with cur.copy(f"COPY search_paper ({', '.join(PAPER_COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(paper_row(*row, now))
        # Newer migrations may add NOT NULL columns without a database default (Django
        # defaults live in Python): give the JSON ones their empty value.
        cur.execute("SELECT column_name FROM information_schema.columns WHERE table_name ="
                    " 'search_paperembedding' AND is_nullable = 'NO' AND column_default IS"
                    " NULL AND data_type = 'jsonb'")
        extra = [r[0] for r in cur.fetchall()]
        columns = ", ".join(EMBEDDING_COLUMNS + tuple(extra))
        with cur.copy(f"COPY search_paperembedding ({columns}) FROM STDIN") as copy:
            for row, literal, bit in zip(rows, floats, bits, strict=True):
                copy.write_row((row[0], space.pk, literal, literal, bit, row[8], now,
                                *["[]"] * len(extra)))
