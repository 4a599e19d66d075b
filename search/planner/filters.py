"""Search filters as SQL: the WHERE fragment every path shares, and cheap counts of it."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from django.db import connection

from search.params import SearchFilters


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
    if filters.added_after:
        clauses.append(f"{alias}.created_at >= %s")
        params.append(filters.added_after)
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


def where_sql(filters: SearchFilters, exclude_ids: Sequence[int], alias: str = "p"
              ) -> tuple[str, list[Any]]:
    """filter_sql, leaving out the excluded papers (the query paper of \"similar\")."""
    where, params = filter_sql(filters, alias)
    if exclude_ids:
        where += f" AND NOT ({alias}.id = ANY(%s))"
        params.append(list(exclude_ids))
    return where, params


def dates_only(filters: SearchFilters) -> bool:
    """Whether the filter holds nothing but categories and dates (what the code rows copy)."""
    return replace(filters, categories=(), published_after=None,
                   published_before=None).is_empty()


def category_literal(category: str) -> str:
    """The category as SQL text, identical in the index predicate and in queries (a partial
    index is used only when the query repeats its predicate)."""
    return "ARRAY['" + category.replace("'", "''") + "']::varchar[]"


ESTIMATE_SECONDS = 30.0
_estimates: dict[tuple[str, str], tuple[float, int]] = {}  # (database, filter) -> (at, rows)


def estimate_matching(filters: SearchFilters) -> int:
    """Postgres' own estimate of the matching papers (EXPLAIN, from the column statistics;
    off by up to a few times for correlated filters, hence ESTIMATE_TRUST). Kept for
    ESTIMATE_SECONDS per process: it changes only when ANALYZE runs, and the EXPLAIN was a
    round trip of its own on every filtered search (1-25 ms on the loaded 2-core machine, as
    much as the scan). A stale estimate can only pick another plan, never other rows."""
    key = (str(connection.settings_dict["NAME"]), repr(filters))
    at, rows = _estimates.get(key, (float("-inf"), 0))
    if time.monotonic() - at <= ESTIMATE_SECONDS:
        return rows
    rows = _explain_rows(filters)
    if len(_estimates) > 4096:  # a bound, not an LRU: filters repeat, the dict stays small
        _estimates.clear()
    _estimates[key] = (time.monotonic(), rows)
    return rows


def forget_estimates() -> None:
    _estimates.clear()


def _explain_rows(filters: SearchFilters) -> int:
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

