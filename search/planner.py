"""Vector retrieval with filters: the selectivity-aware planner and the precision modes.

A filter must never make a query come back short (pgvector applies WHERE after the HNSW scan,
so a rare category can return 2 of 10 results). The planner:
- no filter: an HNSW index scan (ef_search from settings, at least k);
- a filter matching few papers (<= EXACT_SCAN_MAX, or under EXACT_SCAN_FRACTION of a big
  corpus; counted through the B-tree / GIN indexes with a capped count): exact distance
  ranking over just those rows: exact, and cheaper than a graph walk that skips most of what
  it meets;
- one frequent category (+ dates), or a date range over a few busy months: the partial
  graphs of that category or of those months, on the ternary codes (code_graph_scan);
- a broad filter: HNSW with pgvector 0.8's iterative scan, which keeps walking the graph
  until enough rows pass the filter (bounded by hnsw.max_scan_tuples);
- whenever an index scan still returns fewer than k, exact ranking over the filter.
EXACT_SCAN_MAX is set from measurement (docs/benchmarks.md, `manage.py bench filtered`).

Precision modes (issue #4), all returning cosine similarity of the *full* vectors:
- exact:   float scan, no index (the reference);
- float:   HNSW on vector(dim);
- halfvec: HNSW on halfvec(dim), graph degree m=12 searched at ef_search >= 200 (half the
           index memory, float's recall), re-scored with the float vector;
- binary:  HNSW on bit(dim) by Hamming distance for k * oversample candidates, then rerank
           by the float vector (the index is 32x smaller than float's).
- ternary: the same on the 2-bit-per-dimension ternary code (search.codes): a richer code,
           so fewer candidates to rerank; falls back to halfvec until the space's code is
           built (search.services.space_build_code).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any, Sequence

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from pgvector import Bit, HalfVector, Vector

from search import codes
from search.models import EmbeddingSpace
from search.params import PRECISIONS, SearchFilters  # noqa: F401 - re-exported

EXACT_SCAN_MAX = 3_000
# ...or, on a big corpus, below this share of it: at 1M papers a 1% filter (10k rows) ranked
# exactly in ~200 ms with recall 1.0, while the iterative scan took ~380 ms (p95) for recall
# 0.78, its graph walk skipping 99% of what it met (docs/benchmarks.md, `bench_scale filtered`).
EXACT_SCAN_FRACTION = 0.02


@dataclass(frozen=True)
class IndexMode:
    """How one precision mode scans its index."""

    column: str  # column before the fixed-dimension cast (pc.* = the code table)
    cast: str  # pgvector type of the index expression
    operator: str  # distance operator the index serves
    oversample: int = 1  # candidates per result fetched from the index before the rerank
    ef_search_min: int = 0  # a floor under settings.HNSW_EF_SEARCH for this mode's graph


INDEX_MODES = {
    "float": IndexMode("embedding", "vector", "<=>"),
    # ef_search 200 on the m=12 graph: float's recall at 0.51x its index (`bench_scale graph`;
    # 150 was enough at 74.7k, 1M needed 200)
    "halfvec": IndexMode("embedding_half", "halfvec", "<=>", ef_search_min=200),
    # oversample 40: the smallest that kept recall@10 >= 0.95 at 74.7k (docs/benchmarks.md)
    "binary": IndexMode("embedding_bit", "bit", "<~>", oversample=40),
    # oversample 20: recall@10 0.991 at 74.7k, 0.967 at 1M (x10: 0.977 / 0.943), still
    # faster than binary x40 (docs/benchmarks.md, `bench_scale precision`)
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
                           ("datasets", filters.datasets), ("concepts", filters.concepts)):
        if values:  # papers carrying all the given labels / naming all the given concepts
            clauses.append(f"{alias}.{column} @> %s::varchar[]")
            params.append(list(values))
    return (" AND ".join(clauses) or "TRUE"), params


def name_tokens(text: str) -> list[str]:
    """Lower-case alphanumeric tokens, as the SQL function paperscope_name_tokens makes them."""
    return sorted({t for t in re.split(r"[\W_]+", text.lower()) if t})


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _where(filters: SearchFilters, exclude_ids: Sequence[int], alias: str = "p"
           ) -> tuple[str, list[Any]]:
    where, params = filter_sql(filters, alias)
    if exclude_ids:
        where += f" AND NOT ({alias}.id = ANY(%s))"
        params.append(list(exclude_ids))
    return where, params


# Candidates per result from each category or month graph (ternary codes) before the float
# rerank: at 1M x10 gave recall@10 0.92; x20 0.94-0.96 on the 50% cs.CV graph, x30 0.96,
# x40 0.978 (p50 10.3 / 11.1 / 12.5 ms; docs/benchmarks.md).
CODE_GRAPH_OVERSAMPLE = 30
ESTIMATE_TRUST = 2  # beyond 2x the threshold, the statistics decide alone (no count)


def estimate_matching(filters: SearchFilters) -> int:
    """Postgres' own estimate of the matching papers (EXPLAIN: ~0.1 ms, from the column
    statistics; off by up to a few times for correlated filters, hence ESTIMATE_TRUST)."""
    where, params = filter_sql(filters)
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM search_paper p WHERE {where}", params)
        raw = cursor.fetchone()[0]
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    return int(plan.get("Plan Rows", 0))


def count_matching(filters: SearchFilters, *, cap: int) -> int:
    """How many papers match, counting no further than `cap` (a cheap bound for planning)."""
    where, params = filter_sql(filters)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM search_paper p WHERE {where} LIMIT %s) s",
            [*params, cap],
        )
        return int(cursor.fetchone()[0])


# --- per-category and per-month graphs (on the ternary codes) --------------------------------

def category_index_name(space: EmbeddingSpace, category: str) -> str:
    import hashlib

    return f"emb_s{int(space.pk)}_cat_{hashlib.sha1(category.encode()).hexdigest()[:10]}"


def category_literal(category: str) -> str:
    """The category as SQL text, identical in the index predicate and in queries (a partial
    index is used only when the query repeats its predicate)."""
    return "ARRAY['" + category.replace("'", "''") + "']::varchar[]"


def month_index_name(space: EmbeddingSpace, month: date, category: str | None = None) -> str:
    """A month's graph, or one category's papers of that month (emb_s1_cm_<sha>_202606)."""
    if category is None:
        return f"emb_s{int(space.pk)}_month_{month:%Y%m}"
    return f"{category_index_name(space, category).replace('_cat_', '_cm_')}_{month:%Y%m}"


def month_predicate(month: date, alias: str = "") -> str:
    """The calendar month as SQL, identical in the index predicate and in queries."""
    column = f"{alias}.published" if alias else "published"
    return (f"{column} >= DATE '{month:%Y-%m-%d}' AND "
            f"{column} < DATE '{next_month(month):%Y-%m-%d}'")


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def vector_indexes() -> frozenset[str]:
    """Names of the vector indexes that exist (cached for a minute; the code build clears it)."""
    from django.core.cache import cache

    names = cache.get(vector_indexes_key())
    if names is None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'emb%%'")
            names = frozenset(r[0] for r in cursor.fetchall())
        cache.set(vector_indexes_key(), names, 60)
    return names


def space_indexes_like(space: EmbeddingSpace) -> str:
    """A LIKE pattern matching the names of one space's vector indexes and no other's
    ("_" escaped: emb_s1_% would also match emb_s10_...)."""
    return f"emb\\_s{int(space.pk)}\\_%"


def vector_indexes_key() -> str:
    """Per database: two databases sharing a cache (benchmarks, staging beside production)
    have the same space ids, so the same index names for different graphs."""
    return f"paperscope:vector-indexes:{connection.settings_dict['NAME']}"


def _dates_only(filters: SearchFilters) -> bool:
    return replace(filters, categories=(), published_after=None,
                   published_before=None).is_empty()


def category_graph(space: EmbeddingSpace, filters: SearchFilters, precision: str) -> str | None:
    """The category whose own graph can serve this filter, if any: one category asked for,
    besides it only dates (tested on the code rows' own copies), its partial index built, and
    an index precision mode."""
    if (precision == "exact" or len(filters.categories) != 1 or not _dates_only(filters)
            or not space.code_version):
        return None
    category = filters.categories[0]
    return category if category_index_name(space, category) in vector_indexes() else None


# A date filter is served by the graphs of the months it spans when that takes at most this
# many graph walks (each ~3 ms at 1M; more are slower than one iterative walk of the whole
# graph, which is good enough for the broad filters that span many months) ...
MONTH_WALKS_MAX = 4
# ...a category + date filter, by that category's month graphs (smaller: at 1M five walks of
# the cs.CL months cost p50 15 / p95 17 ms, against 19 / 29 ms for an iterative walk of the
# cs.CL graph skipping the 70% of it outside the dates).
CATEGORY_MONTH_WALKS_MAX = 6
# ...and the days left over (the part of a month the range cuts, months too small for a
# graph) hold at most this many papers, ranked by their codes exactly from the covering
# (space, date) index (5,600 codes at 1M: 1.5 ms).
MONTH_EXACT_MAX = 10_000


@dataclass(frozen=True)
class MonthSlices:
    """How a date range splits over the per-month graphs."""

    whole: tuple[date, ...]  # months inside the range: their graph walked as is
    cut: tuple[date, ...]  # months the range cuts, too many rows to rank exactly: walked
    #                        with the date filter (iterative scan)
    exact: tuple[tuple[date | None, date | None], ...]  # [from, until) ranked exactly


def month_slices(space: EmbeddingSpace, filters: SearchFilters, precision: str,
                 category: str | None = None) -> MonthSlices | None:
    """The month graphs that can serve a date filter (alone, or with the one `category`
    whose month graphs are meant), or None. A 10% date filter at 1M walked the whole graph
    skipping 90% of it: recall 0.94, p95 4.1x the unfiltered search; over its months' own
    graphs: 0.99, 1.9x (docs/benchmarks.md)."""
    if (precision == "exact" or filters.categories != ((category,) if category else ())
            or not _dates_only(filters) or not space.code_version
            or not (filters.published_after or filters.published_before)):
        return None
    prefix = month_index_name(space, date(2000, 1, 1), category)[:-6]
    months = sorted(date(int(n[-6:-2]), int(n[-2:]), 1) for n in vector_indexes()
                    if n.startswith(prefix) and n[-6:].isdigit())
    start = filters.published_after  # inclusive
    until = (filters.published_before + timedelta(days=1)) if filters.published_before else None
    inside = [m for m in months
              if (until is None or m < until) and (start is None or next_month(m) > start)]
    if not inside:
        return None
    whole = [m for m in inside if (start is None or m >= start)
             and (until is None or next_month(m) <= until)]
    cut = [m for m in inside if m not in whole]
    if len(inside) > (CATEGORY_MONTH_WALKS_MAX if category else MONTH_WALKS_MAX):
        return None
    # Exactly ranked: the range outside every month graph, and each cut month whose part in
    # the range is small (a graph walk would skip most of the month).
    exact: list[tuple[date | None, date | None]] = []
    edge = start
    for m in inside:
        if edge is None or edge < m:
            exact.append((edge, m))
        edge = next_month(m)
    if until is None or edge < until:
        exact.append((edge, until))
    # A category's cut months are always walked: counting its papers in part of a month reads
    # every paper of those days (the index holds dates, not categories; 70 ms at 1M).
    walked_cut = []
    for m in cut:
        part = (max(m, start) if start else m, min(next_month(m), until) if until else next_month(m))
        if category is None and _count_codes(space, [part], MONTH_EXACT_MAX + 1) <= MONTH_EXACT_MAX:
            exact.append(part)
        else:
            walked_cut.append(m)
    # All papers of those days (an index-only count), a bound on the category's. With a
    # category each of them is read from the table to test it: a smaller budget.
    budget = EXACT_SCAN_MAX if category else MONTH_EXACT_MAX
    if exact and _count_codes(space, exact, budget + 1) > budget:
        return None
    return MonthSlices(tuple(whole), tuple(walked_cut), tuple(exact))


def _range_sql(start: date | None, until: date | None, category: str | None = None,
               alias: str = "pc") -> tuple[str, list[Any]]:
    """A [start, until) date range as SQL (None = open end), of one category's papers if
    given."""
    conds, params = [f"{alias}.published IS NOT NULL"], []
    if category is not None:
        conds.append(f"{alias}.categories && {category_literal(category)}")
    if start is not None:
        conds.append(f"{alias}.published >= %s")
        params.append(start)
    if until is not None:
        conds.append(f"{alias}.published < %s")
        params.append(until)
    return " AND ".join(conds), params


def _count_codes(space: EmbeddingSpace, ranges, cap: int) -> int:
    """Code rows dated within the ranges, each range counted no further than `cap`. One
    index-only scan per range (an OR of ranges would read the rows themselves)."""
    parts, params = [], []
    for start, until in ranges:
        where, where_params = _range_sql(start, until)
        parts.append(f"(SELECT count(*) FROM (SELECT 1 FROM search_papercode pc "
                     f"WHERE pc.space_id = %s AND {where} LIMIT %s) s)")
        params += [space.pk, *where_params, cap]
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + " + ".join(parts), params)
        return int(cursor.fetchone()[0])


def exact_scan_threshold() -> int:
    """Matching papers up to which the planner ranks exactly instead of walking the graph."""
    return max(EXACT_SCAN_MAX, int(EXACT_SCAN_FRACTION * corpus_size()))


_corpus_size: tuple[float, int] = (float("-inf"), 0)  # (read at, value), per process


def corpus_size() -> int:
    """Papers in the corpus as Postgres last estimated them (pg_class.reltuples: close enough
    to scale a threshold); 0 before the table was first analysed. Re-read once a minute, not
    on every filtered search."""
    global _corpus_size
    read_at, size = _corpus_size
    if time.monotonic() - read_at > 60:
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = 'search_paper'::regclass")
            row = cursor.fetchone()
        size = max(0, int(row[0])) if row else 0
        _corpus_size = (time.monotonic(), size)
    return size


# --- the planner ------------------------------------------------------------------------------

def vector_ranking(
    *, space: EmbeddingSpace, vector: np.ndarray, k: int, filters: SearchFilters,
    exclude_ids: Sequence[int] = (), precision: str | None = None,
    exact_scan_max: int | None = None,
) -> tuple[list[tuple[int, float]], dict[str, Any]]:
    """Top-k (paper id, cosine similarity) in `space`, honouring filters; never short."""
    precision = precision or settings.SEARCH_PRECISION
    if exact_scan_max is None:
        exact_scan_max = exact_scan_threshold()
    where, params = _where(filters, exclude_ids)
    plan: dict[str, Any] = {"space": space.name, "precision": precision}
    if precision == "ternary" and not space.code_version:
        precision = plan["precision"] = "halfvec"
        plan["note"] = "the ternary code of this space is not built yet: used halfvec"
    started = time.perf_counter()
    if precision == "exact":
        plan["plan"] = "exact"
        rows = exact_scan(space, vector, k, where, params)
    elif filters.is_empty():
        plan["plan"] = "hnsw"
        rows = index_scan(space, vector, k, where, params, precision=precision, iterative=False)
    else:
        estimate = estimate_matching(filters)
        category = category_graph(space, filters, precision)
        # Ranked exactly up to this many matches (fewer when the category has its own graph).
        exact_cap = min(exact_scan_max, EXACT_SCAN_MAX) if category else exact_scan_max
        rows = None
        if estimate > ESTIMATE_TRUST * exact_scan_max:
            # Far above the threshold by Postgres' own statistics: reading the matching rows
            # (up to the cap) would cost a bitmap of the whole filter, ~3-9 ms for a category
            # + date filter.
            plan["matching_estimate"] = f"~{estimate} (statistics)"
        else:
            rows, matches = filtered_scan(space, vector, k, where, params, cap=exact_cap)
            plan["matching_estimate"] = matches if rows is not None else f">{exact_cap}"
        small = rows is not None
        months = None if small or category else month_slices(space, filters, precision)
        if small:
            plan["plan"] = "exact_filtered"
        elif category is not None and (months := month_slices(
                space, filters, precision, category)) is not None:
            # The category's month graphs: a date range no longer skips most of its graph.
            rows = _month_graphs_scan(space, vector, k, filters, exclude_ids, months, plan,
                                      category)
        elif category is not None:
            # The category's own graph: no skipping of other categories' papers; a date
            # filter is applied by an iterative scan of that graph.
            dates = replace(filters, categories=())
            plan["plan"] = "category_graph" + ("" if dates.is_empty() else "_iterative")
            plan["precision"] = "ternary"
            walk, walk_params = filter_sql(dates, alias="pc")
            rows = code_graph_scan(
                space, vector, k, [(f"{walk} AND pc.categories && {category_literal(category)}",
                                    walk_params)],
                recheck=filters, exclude_ids=exclude_ids, iterative=not dates.is_empty())
        elif months is not None:
            rows = _month_graphs_scan(space, vector, k, filters, exclude_ids, months, plan)
        else:
            plan["plan"] = "hnsw_iterative"
            rows = index_scan(space, vector, k, where, params, precision=precision,
                              iterative=True,
                              oversample=max(INDEX_MODES[precision].oversample,
                                             int(settings.HNSW_ITERATIVE_OVERSAMPLE)))
    if len(rows) < k and plan["plan"] not in ("exact", "exact_filtered"):
        # A half-embedded corpus, or a filter the graph walk could not satisfy within
        # max_scan_tuples: never return short while matching rows exist.
        plan["plan"] += "+exact_fallback"
        rows, _ = filtered_scan(space, vector, k, where, params)
    plan["ms"] = round((time.perf_counter() - started) * 1000, 2)
    return [(pid, 1.0 - float(dist)) for pid, dist in rows], plan


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
    ef = ef_search or max(int(settings.HNSW_EF_SEARCH), mode.ef_search_min, candidates)
    with transaction.atomic(), connection.cursor() as cursor:
        _hnsw_session(cursor, ef, iterative)
        cursor.execute(sql, [*params, literal, candidates,
                             Vector(vector).to_text(), k])
        return [(int(pid), float(dist)) for pid, dist in cursor.fetchall()]


def _month_graphs_scan(space: EmbeddingSpace, vector: np.ndarray, k: int,
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
    walks = [(scope + month_predicate(m, "pc"), []) for m in months.whole]
    walks += [(f"{scope}{month_predicate(m, 'pc')} AND {dates}", date_params)
              for m in months.cut]
    return code_graph_scan(space, vector, k, walks, recheck=filters, exclude_ids=exclude_ids,
                           iterative=bool(months.cut),
                           exact=[_range_sql(*r, category) for r in months.exact])


def _hnsw_session(cursor, ef_search: int, iterative: bool) -> None:
    """Settings for one index scan. SET LOCAL lasts until the end of the transaction, so the
    caller runs its query inside one."""
    cursor.execute(f"SET LOCAL hnsw.ef_search = {min(int(ef_search), 1000)}")
    # These paths exist to use the index: keep the planner from sorting a full join
    # instead when its row estimate for the filter is off.
    cursor.execute("SET LOCAL enable_sort = off")
    if iterative:
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        cursor.execute(f"SET LOCAL hnsw.max_scan_tuples = {int(settings.HNSW_MAX_SCAN_TUPLES)}")


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
    candidates = k * CODE_GRAPH_OVERSAMPLE
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
    recheck_where, recheck_params = _where(recheck, exclude_ids, alias="cp")
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
    with transaction.atomic(), connection.cursor() as cursor:
        _hnsw_session(cursor, max(int(settings.HNSW_EF_SEARCH), candidates), iterative)
        cursor.execute(sql, [*params, candidates, HalfVector(vector.astype(np.float16)).to_text(),
                             max(FILTERED_CANDIDATES, 4 * k), Vector(vector).to_text(),
                             *recheck_params, k])
        return [(int(pid), float(dist)) for pid, dist in cursor.fetchall()]


FILTERED_CANDIDATES = 40  # halfvec-ranked rows re-scored in float per query (>= 4 per result)


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
                             max(FILTERED_CANDIDATES, 4 * k), Vector(vector).to_text(), k])
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
