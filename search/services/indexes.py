"""Building and dropping a space's vector indexes: the float / halfvec / bit graphs, the
ternary code graph and its per-category and per-month graphs, with the progress of a long
build. The statements and names themselves live in search.planner.indexes, beside the
queries that must repeat them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import contextmanager

from django.conf import settings
from django.db import connection, connections

from search.models import EmbeddingSpace
from search.planner.indexes import (
    code_graph_statement,
    code_index_name,
    forget_vector_indexes,
    space_frequent_slices,
    space_indexes_like,
    vector_index_statements,
    vector_indexes,
)

IndexProgress = Callable[[str, int, int], None]  # (phase, done, total)


def space_ensure_indexes(*, space: EmbeddingSpace) -> None:
    """Partial HNSW indexes for one space: cosine on the float and halfvec copies, Hamming on
    the bit copy (search.planner.indexes.vector_index_statements)."""
    with connection.cursor() as cursor:
        # Inside a transaction that already wrote rows, deferred FK checks would block
        # CREATE INDEX ("pending trigger events"): run them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for sql in vector_index_statements(space):
            cursor.execute(sql)
    forget_vector_indexes()  # the planner serves precisions from this list


def space_code_index_exists(space: EmbeddingSpace) -> bool:
    """Whether the code graph exists (a migration may drop it for a fast rewrite)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_class WHERE relname = %s", [code_index_name(space)])
        return cursor.fetchone() is not None


def space_drop_code_indexes(space: EmbeddingSpace) -> None:
    """Drop the code graph and every per-category and per-month graph of the space (its
    codes are refitted: the graphs would order by meaningless distances)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE "
                       "tablename = 'search_papercode' AND indexname LIKE %s",
                       [space_indexes_like(space)])
        for (name,) in cursor.fetchall():
            cursor.execute(f"DROP INDEX IF EXISTS {name}")


@contextmanager
def _index_build_memory():
    """Enough memory for pgvector to build an HNSW graph in RAM: at the 64 MB default it
    finishes the graph on disk, much slower (the 1M code index had done 68% of its heap after
    11 minutes at 64 MB; docs/benchmarks.md has the in-memory build time)."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW maintenance_work_mem")
        before = cursor.fetchone()[0]
        cursor.execute("SET maintenance_work_mem = %s", [settings.INDEX_BUILD_MEMORY])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = %s", [before])

def space_ensure_slice_indexes(
    *, space: EmbeddingSpace, on_progress: IndexProgress | None = None,
) -> list[str]:
    """Build the missing per-category and per-month graphs; returns the names of all of them
    (idempotent: the periodic sweep calls for it when a month or a category has grown past
    the threshold)."""
    wanted = space_frequent_slices(space)
    for done, (name, predicate) in enumerate(wanted.items()):
        if on_progress:
            on_progress("slices", done, len(wanted))
        _create_code_graph(name, space, predicate)
    if on_progress:
        on_progress("slices", len(wanted), len(wanted))
    forget_vector_indexes()  # here and in the shared cache
    return list(wanted)


def space_slice_indexes_missing(space: EmbeddingSpace) -> list[str]:
    present = vector_indexes()
    return [name for name in space_frequent_slices(space) if name not in present]


def space_ensure_code_index(*, space: EmbeddingSpace,
                            on_progress: IndexProgress | None = None) -> None:
    """The partial HNSW index (Hamming) on the ternary codes. Built after the codes are
    written: one bulk build is much faster than growing the graph row by row. Progress comes
    from pg_stat_progress_create_index, read by a second connection while the build runs."""
    if space_code_index_exists(space):
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    watcher = _IndexBuildWatcher(pid, on_progress) if on_progress else None
    try:
        _create_code_graph(code_index_name(space), space)
    finally:
        if watcher:
            watcher.stop()


def _create_code_graph(name: str, space: EmbeddingSpace, predicate: str = "") -> None:
    """A partial HNSW index (Hamming) on the space's ternary codes, optionally narrowed by an
    extra predicate on the code rows."""
    with _index_build_memory(), connection.cursor() as cursor:
        # Inside a transaction that already wrote rows, deferred FK checks would block
        # CREATE INDEX ("pending trigger events"): run them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(code_graph_statement(name, space, predicate))


class _IndexBuildWatcher:
    """Reports an index build's progress (tuples, or heap blocks, done / total) every second
    from its own database connection (the building one is busy)."""

    def __init__(self, pid: int, on_progress: IndexProgress) -> None:
        self.pid, self.on_progress = pid, on_progress
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.done.wait(1.0):
                with connections["default"].cursor() as cursor:
                    # pgvector's HNSW build reports heap blocks scanned, not tuples_total.
                    cursor.execute(
                        "SELECT tuples_done, tuples_total, blocks_done, blocks_total "
                        "FROM pg_stat_progress_create_index WHERE pid = %s", [self.pid])
                    row = cursor.fetchone()
                if row:
                    tuples_done, tuples_total, blocks_done, blocks_total = (int(v or 0) for v in row)
                    if tuples_total:
                        self.on_progress("index", tuples_done, tuples_total)
                    else:
                        self.on_progress("index", blocks_done, blocks_total)
        finally:
            connections.close_all()

    def stop(self) -> None:
        self.done.set()
        self.thread.join(timeout=5)

