"""Vector retrieval with filters: the selectivity-aware planner and the precision modes.

A filter must never make a query come back short (pgvector applies WHERE after the HNSW scan,
so a rare category can return 2 of 10 results). The planner:
- no filter: an HNSW index scan (ef_search from settings, at least k);
- a filter matching few papers (<= EXACT_SCAN_MAX, counted through the B-tree / GIN indexes
  with a capped count): exact distance ranking over just those rows: fast *and* exact;
- a broad filter: HNSW with pgvector 0.8's iterative scan, which keeps walking the graph
  until enough rows pass the filter (bounded by hnsw.max_scan_tuples);
- whenever an index scan still returns fewer than k, exact ranking over the filter.
EXACT_SCAN_MAX is set from measurement (docs/benchmarks.md, `manage.py bench filtered`).

Precision modes (issue #4), all returning cosine similarity of the *full* vectors:
- exact:   float scan, no index (the reference);
- float:   HNSW on vector(dim);
- halfvec: HNSW on halfvec(dim) (half the index memory), re-scored with the float vector;
- binary:  HNSW on bit(dim) by Hamming distance for k * oversample candidates, then rerank
           by the float vector (the index is 32x smaller than float's).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from pgvector import Bit, HalfVector, Vector

from search.models import EmbeddingSpace
from search.params import PRECISIONS, SearchFilters  # noqa: F401 - re-exported

EXACT_SCAN_MAX = 20_000


@dataclass(frozen=True)
class IndexMode:
    """How one precision mode scans its index."""

    column: str  # column expression before the fixed-dimension cast
    cast: str  # pgvector type of the index expression
    operator: str  # distance operator the index serves
    literal: type  # pgvector class that renders the query literal
    oversample: int = 1  # candidates per result fetched from the index before the rerank


INDEX_MODES = {
    "float": IndexMode("embedding", "vector", "<=>", Vector),
    "halfvec": IndexMode("embedding_half", "halfvec", "<=>", HalfVector),
    # oversample 40: the smallest that kept recall@10 >= 0.95 at 74.7k (docs/benchmarks.md)
    "binary": IndexMode("embedding_bit", "bit", "<~>", Bit, oversample=40),
}


# --- filters as SQL ---------------------------------------------------------------------------

def filter_sql(filters: SearchFilters, alias: str = "p") -> tuple[str, list[Any]]:
    """WHERE-clause fragment (always valid, 'TRUE' when empty) and its parameters."""
    clauses: list[str] = []
    params: list[Any] = []
    if filters.published_after:
        clauses.append(f"{alias}.published >= %s")
        params.append(filters.published_after)
    if filters.published_before:
        clauses.append(f"{alias}.published <= %s")
        params.append(filters.published_before)
    if filters.categories:  # any of the given categories
        clauses.append(f"{alias}.categories && %s::varchar[]")
        params.append(list(filters.categories))
    for author in filters.authors:
        # Every given author: all its name tokens (GIN-indexed), then the name as written,
        # case-insensitively, to keep "van gool" from matching "Gool, ... Van".
        tokens = name_tokens(author)
        if tokens:
            clauses.append(f"{alias}.author_tokens @> %s::text[]")
            params.append(tokens)
        clauses.append(f"EXISTS (SELECT 1 FROM unnest({alias}.authors) AS a(name) "
                       "WHERE a.name ILIKE %s)")
        params.append(f"%{_escape_like(author)}%")
    if filters.venue:
        clauses.append(f"{alias}.venue ILIKE %s")
        params.append(f"%{_escape_like(filters.venue)}%")
    for column, values in (("tasks", filters.tasks), ("methods", filters.methods),
                           ("datasets", filters.datasets)):
        if values:  # papers carrying all the given labels
            clauses.append(f"{alias}.{column} @> %s::varchar[]")
            params.append(list(values))
    return (" AND ".join(clauses) or "TRUE"), params


def name_tokens(text: str) -> list[str]:
    """Lower-case alphanumeric tokens, as the SQL function paperscope_name_tokens makes them."""
    return sorted({t for t in re.split(r"[\W_]+", text.lower()) if t})


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def count_matching(filters: SearchFilters, *, cap: int) -> int:
    """How many papers match, counting no further than `cap` (a cheap bound for planning)."""
    where, params = filter_sql(filters)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM search_paper p WHERE {where} LIMIT %s) s",
            [*params, cap],
        )
        return int(cursor.fetchone()[0])


# --- the planner ------------------------------------------------------------------------------

def vector_ranking(
    *, space: EmbeddingSpace, vector: np.ndarray, k: int, filters: SearchFilters,
    exclude_ids: Sequence[int] = (), precision: str | None = None,
    exact_scan_max: int | None = None,
) -> tuple[list[tuple[int, float]], dict[str, Any]]:
    """Top-k (paper id, cosine similarity) in `space`, honouring filters; never short."""
    precision = precision or settings.SEARCH_PRECISION
    exact_scan_max = EXACT_SCAN_MAX if exact_scan_max is None else exact_scan_max
    where, params = filter_sql(filters)
    if exclude_ids:
        where += " AND NOT (p.id = ANY(%s))"
        params.append(list(exclude_ids))
    plan: dict[str, Any] = {"space": space.name, "precision": precision}
    started = time.perf_counter()
    if precision == "exact":
        plan["plan"] = "exact"
        rows = exact_scan(space, vector, k, where, params)
    elif filters.is_empty():
        plan["plan"] = "hnsw"
        rows = index_scan(space, vector, k, where, params, precision=precision, iterative=False)
    else:
        matches = count_matching(filters, cap=exact_scan_max + 1)
        plan["matching_estimate"] = matches if matches <= exact_scan_max else f">{exact_scan_max}"
        if matches <= exact_scan_max:
            plan["plan"] = "exact_filtered"
            rows = exact_scan(space, vector, k, where, params)
        else:
            plan["plan"] = "hnsw_iterative"
            rows = index_scan(space, vector, k, where, params, precision=precision,
                              iterative=True)
    if len(rows) < k and plan["plan"] not in ("exact", "exact_filtered"):
        # A half-embedded corpus, or a filter the graph walk could not satisfy within
        # max_scan_tuples: never return short while matching rows exist.
        plan["plan"] += "+exact_fallback"
        rows = exact_scan(space, vector, k, where, params)
    plan["ms"] = round((time.perf_counter() - started) * 1000, 2)
    return [(pid, 1.0 - float(dist)) for pid, dist in rows], plan


def index_scan(space: EmbeddingSpace, vector: np.ndarray, k: int, where: str,
               params: list[Any], *, precision: str, iterative: bool,
               ef_search: int | None = None, oversample: int | None = None,
               ) -> list[tuple[int, float]]:
    """HNSW scan in one precision, re-scored (and for binary, reranked) with float vectors."""
    mode = INDEX_MODES[precision]
    dim, sid = int(space.dimension), int(space.pk)
    candidates = k * (oversample or mode.oversample)
    literal = mode.literal(vector > 0 if mode.literal is Bit else
                           vector.astype(np.float16) if mode.literal is HalfVector else vector)
    # The index expression and the `space_id = <literal>` predicate must match the partial
    # index exactly, or Postgres will not use it.
    order = f"e.{mode.column}::{mode.cast}({dim}) {mode.operator} %s::{mode.cast}({dim})"
    # Only join the paper table when a filter needs it. The stale-vector check
    # (content_hash) sits outside the ordered scan: inside, Postgres multiplies the two join
    # selectivities, estimates one row, and prefers "join everything, then sort" over the
    # index (measured: an exact scan at 20x the latency).
    join = "JOIN search_paper p ON p.id = e.paper_id" if where != "TRUE" else ""
    sql = f"""
        WITH candidates AS MATERIALIZED (
            SELECT e.paper_id AS id, e.embedding, e.content_hash
            FROM search_paperembedding e {join}
            WHERE e.space_id = {sid} AND {where}
            ORDER BY {order}
            LIMIT %s
        )
        SELECT c.id, c.embedding <=> %s::vector AS distance
        FROM candidates c JOIN search_paper cp ON cp.id = c.id AND cp.content_hash = c.content_hash
        ORDER BY distance, c.id LIMIT %s
    """
    ef = ef_search or max(int(settings.HNSW_EF_SEARCH), candidates)
    # SET LOCAL lasts until the end of the transaction, so the query runs inside it.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL hnsw.ef_search = {min(int(ef), 1000)}")
        # This path exists to use the index: keep the planner from sorting a full join
        # instead when its row estimate for the filter is off.
        cursor.execute("SET LOCAL enable_sort = off")
        if iterative:
            cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
            cursor.execute(f"SET LOCAL hnsw.max_scan_tuples = {int(settings.HNSW_MAX_SCAN_TUPLES)}")
        cursor.execute(sql, [*params, literal.to_text(), candidates,
                             Vector(vector).to_text(), k])
        return [(int(pid), float(dist)) for pid, dist in cursor.fetchall()]


def exact_scan(space: EmbeddingSpace, vector: np.ndarray, k: int, where: str,
               params: list[Any]) -> list[tuple[int, float]]:
    """Exact cosine ranking over the rows the filter leaves (no vector index)."""
    # `embedding <=> q` without the fixed-dimension cast cannot use the HNSW index.
    sql = f"""
        SELECT p.id, e.embedding <=> %s::vector AS distance
        FROM search_paper p JOIN search_paperembedding e
             ON e.paper_id = p.id AND e.space_id = %s AND e.content_hash = p.content_hash
        WHERE {where}
        ORDER BY distance, p.id
        LIMIT %s
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [Vector(vector).to_text(), space.pk, *params, k])
        return [(int(pid), float(dist)) for pid, dist in cursor.fetchall()]
