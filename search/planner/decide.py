"""The plan decision: which scan serves a query, from the filter's selectivity and the
graphs that exist; an index path that comes back short is completed by exact ranking."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection

from search.models import EmbeddingSpace
from search.params import SearchFilters
from search.planner import filters as filters_module
from search.planner import limits
from search.planner.filters import (
    category_literal,
    dates_only,
    estimate_matching,
    filter_sql,
    where_sql,
)
from search.planner.indexes import (
    category_index_name,
    month_index_name,
    served_precision,
    vector_indexes,
)
from search.planner.months import MonthSlices, next_month, range_sql
from search.planner.scans import (
    INDEX_MODES,
    code_graph_scan,
    corpus_size,
    exact_scan,
    filtered_scan,
    index_scan,
    month_graphs_scan,
)


def category_graph(space: EmbeddingSpace, filters: SearchFilters, precision: str) -> str | None:
    """The category whose own graph can serve this filter, if any: one category asked for,
    besides it only dates (tested on the code rows' own copies), its partial index built, and
    an index precision mode."""
    if (precision == "exact" or len(filters.categories) != 1 or not dates_only(filters)
            or not space.code_version):
        return None
    category = filters.categories[0]
    return category if category_index_name(space, category) in vector_indexes() else None


def month_slices(space: EmbeddingSpace, filters: SearchFilters, precision: str,
                 category: str | None = None) -> MonthSlices | None:
    """The month graphs that can serve a date filter (alone, or with the one `category`
    whose month graphs are meant), or None. A 10% date filter at 1M walked the whole graph
    skipping 90% of it: recall 0.94, p95 4.1x the unfiltered search; over its months' own
    graphs: 0.99, 1.9x (docs/benchmarks.md)."""
    if (precision == "exact" or filters.categories != ((category,) if category else ())
            or not dates_only(filters) or not space.code_version
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
    if len(inside) > (limits.CATEGORY_MONTH_WALKS_MAX if category else limits.MONTH_WALKS_MAX):
        return None
    # Exactly ranked: the range outside every month graph, and each cut month whose part in
    # the range is small (a graph walk would skip most of the month).
    exact: list[tuple[date | None, date | None]] = []
    edge = start
    for m in inside:
        if edge is None or edge < m:
            exact.append((edge, m))
        edge = next_month(m)
    assert edge is not None  # the end of the last month inside (`inside` is not empty)
    if until is None or edge < until:
        exact.append((edge, until))
    # A category's cut months are always walked: counting its papers in part of a month reads
    # every paper of those days (the index holds dates, not categories; 70 ms at 1M).
    walked_cut = []
    for m in cut:
        part = (max(m, start) if start else m, min(next_month(m), until) if until else next_month(m))
        if (category is None and count_codes(space, [part], limits.MONTH_EXACT_MAX + 1)
                <= limits.MONTH_EXACT_MAX):
            exact.append(part)
        else:
            walked_cut.append(m)
    # All papers of those days (an index-only count), a bound on the category's. With a
    # category each of them is read from the table to test it: a smaller budget.
    budget = limits.EXACT_SCAN_MAX if category else limits.MONTH_EXACT_MAX
    if exact and count_codes(space, exact, budget + 1) > budget:
        return None
    return MonthSlices(tuple(whole), tuple(walked_cut), tuple(exact))


_code_counts: dict[tuple, tuple[float, int]] = {}  # (database, space, ranges, cap) -> (at, n)


def count_codes(space: EmbeddingSpace, ranges, cap: int) -> int:
    """Code rows dated within the ranges, each range counted no further than `cap`. One
    index-only scan per range (an OR of ranges would read the rows themselves). Kept for
    ESTIMATE_SECONDS like the estimates: it only chooses between walking a cut month and
    ranking it exactly (both give the same rows), and cost two round trips per date search."""
    key = (str(connection.settings_dict["NAME"]), int(space.pk), tuple(map(tuple, ranges)), cap)
    at, n = _code_counts.get(key, (float("-inf"), 0))
    if time.monotonic() - at <= filters_module.ESTIMATE_SECONDS:
        return n
    n = _count_codes(space, ranges, cap)
    if len(_code_counts) > 4096:
        _code_counts.clear()
    _code_counts[key] = (time.monotonic(), n)
    return n


def _count_codes(space: EmbeddingSpace, ranges, cap: int) -> int:
    parts, params = [], []
    for start, until in ranges:
        where, where_params = range_sql(start, until)
        parts.append(f"(SELECT count(*) FROM (SELECT 1 FROM search_papercode pc "
                     f"WHERE pc.space_id = %s AND {where} LIMIT %s) s)")
        params += [space.pk, *where_params, cap]
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + " + ".join(parts), params)
        return int(cursor.fetchone()[0])


def estimate_trust(filters: SearchFilters) -> float:
    """How far above the exact-ranking threshold Postgres' estimate must be before the planner
    believes it without counting. One category alone (its frequency is in the column's
    most-common-elements statistics) or a date range alone (the histogram) is estimated
    within a few percent: believed as it is, where reading up to the threshold's rows first
    and then walking the graph anyway cost 2x (19.1 vs 9.7 ms at 10k papers, issue 17).
    Authors, labels and combinations of filters (whose selectivities Postgres multiplies as
    if independent) can be off by a few times: ESTIMATE_TRUST."""
    if dates_only(filters) and (not filters.categories
                                or (len(filters.categories) == 1 and not _has_dates(filters))):
        return 1.0
    return float(limits.ESTIMATE_TRUST)


def _has_dates(filters: SearchFilters) -> bool:
    return bool(filters.published_after or filters.published_before)


def exact_scan_threshold() -> int:
    """Matching papers up to which the planner ranks exactly instead of walking the graph."""
    return max(limits.EXACT_SCAN_MAX, int(limits.EXACT_SCAN_FRACTION * corpus_size()))


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
    where, params = where_sql(filters, exclude_ids)
    plan: dict[str, Any] = {"space": space.name, "precision": precision}
    if precision == "ternary" and not space.code_version:
        precision = plan["precision"] = "halfvec"
        plan["note"] = "the ternary code of this space is not built yet: used halfvec"
    if (served := served_precision(space, precision)) != precision:
        plan["note"] = f"this space has no {precision} graph: used {served}"
        precision = plan["precision"] = served
    started = time.perf_counter()
    rows: list[tuple[int, float]] | None  # None only until a scan below has run
    if precision == "exact":
        plan["plan"] = "exact"
        rows = exact_scan(space, vector, k, where, params)
    elif filters.is_empty():
        plan["plan"] = "hnsw"
        rows = index_scan(space, vector, k, where, params, precision=precision, iterative=False)
    else:
        category = category_graph(space, filters, precision)
        # Ranked exactly up to this many matches (fewer when the category has its own graph).
        exact_cap = min(exact_scan_max, limits.EXACT_SCAN_MAX) if category else exact_scan_max
        rows = None
        if category is not None and not _has_dates(filters):
            # A category gets its graph for holding more than EXACT_SCAN_MAX papers: above
            # the cap without asking Postgres (one round trip less).
            plan["matching_estimate"] = f">{limits.EXACT_SCAN_MAX} (has its own graph)"
        elif (estimate := estimate_matching(filters)) > estimate_trust(filters) * exact_cap:
            # Above the threshold by Postgres' own statistics: reading the matching rows (up
            # to the cap) to find that out would be wasted, ~3-9 ms for a category + date
            # filter before the graph walk.
            plan["matching_estimate"] = f"~{estimate} (statistics)"
        else:
            rows, matches = filtered_scan(space, vector, k, where, params, cap=exact_cap)
            plan["matching_estimate"] = matches if rows is not None else f">{exact_cap}"
        small = rows is not None
        months = None if small or category else month_slices(space, filters, precision)
        if rows is not None:  # small (the same test, which mypy narrows on)
            plan["plan"] = "exact_filtered"
        elif category is not None and (months := month_slices(
                space, filters, precision, category)) is not None:
            # The category's month graphs: a date range no longer skips most of its graph.
            rows = month_graphs_scan(space, vector, k, filters, exclude_ids, months, plan,
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
            rows = month_graphs_scan(space, vector, k, filters, exclude_ids, months, plan)
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
