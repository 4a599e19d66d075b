"""The scan executors: each ranks one way (an HNSW walk in a precision mode, the partial code
graphs, exact ranking over a filter) and returns (paper id, cosine distance) rows; which one
runs is decided in search.planner.decide."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, overload

import numpy as np
import psycopg
from django.conf import settings
from django.db import connection, transaction
from pgvector import Bit, HalfVector, Vector

from search import codes
from search.models import EmbeddingSpace
from search.params import SearchFilters
from search.planner import limits
from search.planner.filters import category_literal, filter_sql, where_sql
from search.planner.months import MonthSlices, month_predicate, range_sql


@dataclass(frozen=True)
class IndexMode:
    """How one precision mode scans its index."""

    column: str  # column before the fixed-dimension cast (pc.* = the code table)
    cast: str  # pgvector type of the index expression
    operator: str  # distance operator the index serves
    oversample: int = 1  # candidates per result fetched from the index before the rerank
    ef_search_min: int = 0  # a floor under settings.HNSW_EF_SEARCH for this mode's graph ...
    ef_search_min_small: int | None = None  # ... below limits.SMALL_CORPUS papers, if lower


INDEX_MODES = {
    "float": IndexMode("embedding", "vector", "<=>"),
    # ef_search 200 on the m=12 graph: float's recall at 0.51x its index at 1M (`bench
    # graph`); at 74.7k 120 is enough (recall@10 0.993, as float at ef 64), and 200 cost 1.5x
    # the p50 of pgvector by hand at equal recall (docs/benchmarks.md "Vector stage")
    "halfvec": IndexMode("embedding_half", "halfvec", "<=>", ef_search_min=200,
                         ef_search_min_small=150),
    # oversample 40: the smallest that kept recall@10 >= 0.95 at 74.7k (docs/benchmarks.md)
    "binary": IndexMode("embedding_bit", "bit", "<~>", oversample=40),
    # oversample 20: recall@10 0.991 at 74.7k, 0.967 at 1M (x10: 0.977 / 0.943), still
    # faster than binary x40 (docs/benchmarks.md, `bench precision`)
    "ternary": IndexMode("pc.code", "bit", "<~>", oversample=20),
}


def index_literal(space: EmbeddingSpace, precision: str, vector: np.ndarray) -> tuple[int, str]:
    """(dimension of the index expression, query literal) for a precision mode."""
    dim = int(space.dimension)
    if precision == "binary":
        return dim, Bit(vector > 0).to_text()
    if precision == "ternary":
        thresholds = np.asarray(space.code_thresholds, dtype=np.float32)
        return codes.code_bits(dim, thresholds), codes.bit_literal(vector, thresholds)
    if precision == "halfvec":
        return dim, HalfVector(vector.astype(np.float16)).to_text()
    return dim, Vector(vector).to_text()


def index_scan(space: EmbeddingSpace, vector: np.ndarray, k: int, where: str,
               params: list[Any], *, precision: str, iterative: bool,
               ef_search: int | None = None, oversample: int | None = None,
               ) -> list[tuple[int, float]]:
    """HNSW scan in one precision, re-scored (and for binary, reranked) with float vectors."""
    mode = INDEX_MODES[precision]
    sid = int(space.pk)
    dim, literal = index_literal(space, precision, vector)
    candidates = k * (oversample or mode.oversample)
    # The index expression and the `space_id = <literal>` predicate must match the partial
    # index exactly, or Postgres will not use it.
    column = mode.column if "." in mode.column else f"e.{mode.column}"
    order = f"{column}::{mode.cast}({dim}) {mode.operator} %s::{mode.cast}({dim})"
    # Only join the paper table when a filter needs it. The stale-vector check
    # (content_hash) sits outside the ordered scan: inside, Postgres multiplies the two join
    # selectivities, estimates one row, and prefers "join everything, then sort" over the
    # index (measured: an exact scan at 20x the latency).
    join = "JOIN search_paper p ON p.id = e.paper_id" if where != "TRUE" else ""
    # The ternary codes live in their own table; its partial index is per space_id there.
    alias = column.split(".")[0]
    source = ("search_papercode pc JOIN search_paperembedding e ON e.id = pc.embedding_id"
              if alias == "pc" else "search_paperembedding e")
    sql = f"""
        WITH candidates AS MATERIALIZED (
            SELECT e.paper_id AS id, e.embedding, e.content_hash
            FROM {source} {join}
            WHERE {alias}.space_id = {sid} AND {where}
            ORDER BY {order}
            LIMIT %s
        )
        SELECT c.id, c.embedding <=> %s::vector AS distance
        FROM candidates c JOIN search_paper cp ON cp.id = c.id AND cp.content_hash = c.content_hash
        ORDER BY distance, c.id LIMIT %s
    """
    ef = ef_search or max(int(settings.HNSW_EF_SEARCH), ef_search_floor(mode, iterative), candidates)
    with connection.cursor() as cursor:
        rows = execute_with_settings(cursor, hnsw_settings(ef, iterative), sql,
                                     [*params, literal, candidates, Vector(vector).to_text(), k])
    return [(int(pid), float(dist)) for pid, dist in rows]


def ef_search_floor(mode: IndexMode, iterative: bool = False) -> int:
    """The mode's ef_search floor for this corpus (a bigger graph needs a wider search). An
    iterative walk under a filter keeps the full floor: at 74.7k, 50% date filter, ef 120
    gave recall@10 0.973 where 200 gave 0.998."""
    if (mode.ef_search_min_small is not None and not iterative
            and corpus_size() < limits.SMALL_CORPUS):
        return mode.ef_search_min_small
    return mode.ef_search_min


_corpus_size: tuple[float, int] = (float("-inf"), 0)  # (read at, value), per process


def corpus_size() -> int:
    """Papers in the corpus as Postgres last estimated them (pg_class.reltuples: close enough
    to scale a threshold); 0 before the table was first analysed. Re-read once a minute, not
    on every search."""
    global _corpus_size
    read_at, size = _corpus_size
    if time.monotonic() - read_at > 60:
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = 'search_paper'::regclass")
            row = cursor.fetchone()
        size = max(0, int(row[0])) if row else 0
        _corpus_size = (time.monotonic(), size)
    return size


def month_graphs_scan(space: EmbeddingSpace, vector: np.ndarray, k: int,
                      filters: SearchFilters, exclude_ids: Sequence[int], months: MonthSlices,
                      plan: dict[str, Any], category: str | None = None
                      ) -> list[tuple[int, float]]:
    """The graphs of the months a range spans (all papers', or one category's); what they
    leave, ranked exactly."""
    plan["plan"] = "category_month_graphs" if category else "month_graphs"
    plan["precision"] = "ternary"
    plan["months"] = {"whole": len(months.whole), "cut": len(months.cut),
                      "exact_ranges": len(months.exact)}
    dates, date_params = filter_sql(replace(filters, categories=()), alias="pc")
    # the partial index predicate, repeated as written: category first, then the month
    scope = f"pc.categories && {category_literal(category)} AND " if category else ""
    walks: list[tuple[str, list[Any]]] = [(scope + month_predicate(m, "pc"), []) for m in months.whole]
    walks += [(f"{scope}{month_predicate(m, 'pc')} AND {dates}", date_params)
              for m in months.cut]
    return code_graph_scan(space, vector, k, walks, recheck=filters, exclude_ids=exclude_ids,
                           iterative=bool(months.cut),
                           exact=[range_sql(*r, category) for r in months.exact])


def hnsw_settings(ef_search: int, iterative: bool) -> dict[str, str]:
    """The settings one index scan runs with (transaction-local: see execute_with_settings)."""
    values = {"hnsw.ef_search": str(min(int(ef_search), 1000)),
              # These paths exist to use the index: keep the planner from sorting a full
              # join instead when its row estimate for the filter is off.
              "enable_sort": "off"}
    if iterative:
        values["hnsw.iterative_scan"] = "relaxed_order"
        values["hnsw.max_scan_tuples"] = str(int(settings.HNSW_MAX_SCAN_TUPLES))
    return values


_SETTING_VALUE = re.compile(r"^[A-Za-z0-9_.]+$")


def execute_with_settings(cursor, values: dict[str, str], sql: str, params: list[Any]
                          ) -> list[tuple[Any, ...]]:
    """Run `sql` with the settings `values` in force for it alone, in one round trip.

    Django's cursors bind parameters on the client (psycopg's ClientCursor), so the SET LOCALs
    and the query go to the server as one simple-protocol message, which Postgres runs as one
    implicit transaction: the settings end with it, nothing is left on a pooled connection,
    and there is no BEGIN / COMMIT to send. (Within an outer transaction they last until its
    end, as SET LOCAL under transaction.atomic() did.) It replaced BEGIN, two or four SET
    LOCALs and COMMIT (5-7 round trips; docs/benchmarks.md "Vector stage").
    With server-side binding (OPTIONS["server_side_binding"]) a message cannot hold several
    statements: then one `SELECT set_config(..., true)` in a transaction with the query."""
    for name, value in values.items():  # they are written into the SQL text: names we chose
        if not (_SETTING_VALUE.match(name) and _SETTING_VALUE.match(value)):
            raise ValueError(f"bad setting {name}={value!r}")
    if isinstance(getattr(cursor, "cursor", cursor), psycopg.ClientCursor):
        sets = "".join(f"SET LOCAL {name} = {value}; " for name, value in values.items())
        cursor.execute(sets + sql, params)
        while cursor.description is None and cursor.nextset():
            pass  # past the SETs' results, to the query's rows
        return cursor.fetchall()
    with transaction.atomic():
        cursor.execute("SELECT " + ", ".join(["set_config(%s, %s, true)"] * len(values)),
                       [x for item in values.items() for x in item])
        cursor.execute(sql, params)
        return cursor.fetchall()


def code_graph_scan(space: EmbeddingSpace, vector: np.ndarray, k: int,
                    walks: Sequence[tuple[str, list[Any]]], *, recheck: SearchFilters,
                    exclude_ids: Sequence[int] = (), iterative: bool = False,
                    exact: Sequence[tuple[str, list[Any]]] = ()) -> list[tuple[int, float]]:
    """Partial graphs on the ternary codes (a category's, a month's), walked on the code
    table alone: each walk's predicate repeats its index's, plus any date filter, tested on
    the code row's own copy of the date, so no visited row is joined to anything (measured at
    74.7k, cs.CL + date: p50 7.7 vs 12 ms with the joins). Each `exact` condition (the days
    no graph covers) has its rows ranked by Hamming distance without a graph, read from the
    covering (space, date) index alone.

    The candidates of all walks are then narrowed by their inline halfvec copies, reranked by
    their float vectors and rechecked against the paper itself with the whole filter (a
    lagging copy can cost a result, refilled by the exact fallback, never add one). At 1M,
    cs.CV: 7.1 vs 8.1 ms warm, 7.5 vs 16.9 ms with cold TOAST pages, same results."""
    mode = INDEX_MODES["ternary"]
    dim, literal = index_literal(space, "ternary", vector)
    candidates = code_graph_candidates(k)
    distance = f"pc.code::bit({dim}) {mode.operator} %s::bit({dim})"
    # An exact branch orders by "distance + 0": an ordering no index serves, so Postgres
    # ranks those rows itself instead of walking the whole-space graph and filtering after.
    branches, params = [], []
    for (predicate, predicate_params), order in ([(w, distance) for w in walks]
                                                 + [(x, f"({distance}) + 0") for x in exact]):
        branches.append(f"(SELECT pc.embedding_id AS eid, {distance} AS d "
                        f"FROM search_papercode pc "
                        f"WHERE pc.space_id = {int(space.pk)} AND {predicate} "
                        f"ORDER BY {order} LIMIT %s)")
        params += [literal, *predicate_params, literal, candidates]
    recheck_where, recheck_params = where_sql(recheck, exclude_ids, alias="cp")
    sql = f"""
        WITH candidates AS MATERIALIZED (
            -- the nearest codes over all branches, as one graph over their union would give:
            -- reading every branch's halfvec copies cost more than the walks (600 rows at 1M)
            SELECT eid FROM ({" UNION ALL ".join(branches)}) u ORDER BY d LIMIT %s
        ), nearest AS MATERIALIZED (
            -- the inline halfvec copy narrows the candidates before the TOASTed float is read
            SELECT e.id FROM candidates c JOIN search_paperembedding e ON e.id = c.eid
            ORDER BY e.embedding_half <=> %s::halfvec
            LIMIT %s
        )
        SELECT e.paper_id, e.embedding <=> %s::vector AS distance
        FROM nearest n
        JOIN search_paperembedding e ON e.id = n.id
        JOIN search_paper cp ON cp.id = e.paper_id AND cp.content_hash = e.content_hash
        WHERE {recheck_where}
        ORDER BY distance, e.paper_id LIMIT %s
    """
    with connection.cursor() as cursor:
        rows = execute_with_settings(
            cursor, hnsw_settings(max(int(settings.HNSW_EF_SEARCH), candidates), iterative), sql,
            [*params, candidates, HalfVector(vector.astype(np.float16)).to_text(),
             max(limits.FILTERED_CANDIDATES, 4 * k), Vector(vector).to_text(), *recheck_params, k])
    return [(int(pid), float(dist)) for pid, dist in rows]


def code_graph_candidates(k: int) -> int:
    """Candidates the code graphs return for a top k: CODE_GRAPH_OVERSAMPLE per result for the
    first ten, CODE_GRAPH_OVERSAMPLE_BEYOND_10 per result after them. The code's ranking
    error is a distance band around the k-th neighbour, not a share of k, so a deep list
    needs far fewer per result: hybrid search's 50 at 74.7k, cs.CV, recall@50 0.993 / 0.980 /
    0.960 with 1,500 / 600 / 400 candidates (p50 74 / 48 / 34 ms, docs/benchmarks.md "Vector
    stage"); 1,500 also meant ef_search 1000."""
    return (limits.CODE_GRAPH_OVERSAMPLE * min(k, 10)
            + limits.CODE_GRAPH_OVERSAMPLE_BEYOND_10 * max(0, k - 10))


@overload
def filtered_scan(space: EmbeddingSpace, vector: np.ndarray, k: int, where: str,
                  params: list[Any], *, cap: None = None) -> tuple[list[tuple[int, float]], int]: ...


@overload
def filtered_scan(space: EmbeddingSpace, vector: np.ndarray, k: int, where: str,
                  params: list[Any], *, cap: int | None) -> tuple[list[tuple[int, float]] | None, int]: ...


def filtered_scan(space: EmbeddingSpace, vector: np.ndarray, k: int, where: str,
                  params: list[Any], *, cap: int | None = None,
                  ) -> tuple[list[tuple[int, float]] | None, int]:
    """Ranking over every row the filter leaves, by the half-precision copy, with the top
    candidates re-scored by the float vector; and how many papers match. With `cap`, when
    more than `cap` papers match (counted no further) nothing is ranked and the rows are None:
    the count and the ranking share one read of the matching rows (counting first, then
    ranking, read them twice: 33 vs 19 ms for an author filter at 1M).

    The float vector lives out of line (TOAST): reading it for every matching row doubled the
    cost (1M papers, 10k matching: ~70 vs ~50 ms with warm buffers, docs/benchmarks.md);
    halfvec distances differ from float ones by ~1e-3, so the float top k is among the
    halfvec top 4k."""
    limit = "" if cap is None else f"LIMIT {int(cap) + 1}"
    sql = f"""
        WITH matching AS MATERIALIZED (
            SELECT p.id, p.content_hash FROM search_paper p WHERE {where} {limit}
        ), candidates AS MATERIALIZED (
            SELECT m.id AS pid, e.id AS eid
            FROM matching m JOIN search_paperembedding e
                 ON e.paper_id = m.id AND e.space_id = %s AND e.content_hash = m.content_hash
            WHERE (SELECT count(*) FROM matching) <= %s
            ORDER BY e.embedding_half <=> %s::halfvec, m.id
            LIMIT %s
        )
        SELECT n.total, r.pid, r.distance
        FROM (SELECT count(*) AS total FROM matching) n
        LEFT JOIN LATERAL (
            SELECT c.pid, e.embedding <=> %s::vector AS distance
            FROM candidates c JOIN search_paperembedding e ON e.id = c.eid
            ORDER BY distance, c.pid
            LIMIT %s
        ) r ON TRUE
        ORDER BY r.distance, r.pid
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, space.pk, cap if cap is not None else 2**62,
                             HalfVector(vector.astype(np.float16)).to_text(),
                             max(limits.FILTERED_CANDIDATES, 4 * k),
                             Vector(vector).to_text(), k])
        result = cursor.fetchall()
    total = int(result[0][0])
    if cap is not None and total > cap:
        return None, total
    return [(int(pid), float(dist)) for _, pid, dist in result if pid is not None], total


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
