"""Calendar months as SQL: the month graphs' predicates and the date ranges ranked exactly."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from search.planner.filters import category_literal


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def month_predicate(month: date, alias: str = "") -> str:
    """The calendar month as SQL, identical in the index predicate and in queries."""
    column = f"{alias}.published" if alias else "published"
    return (f"{column} >= DATE '{month:%Y-%m-%d}' AND "
            f"{column} < DATE '{next_month(month):%Y-%m-%d}'")


def range_sql(start: date | None, until: date | None, category: str | None = None,
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


@dataclass(frozen=True)
class MonthSlices:
    """How a date range splits over the per-month graphs."""

    whole: tuple[date, ...]  # months inside the range: their graph walked as is
    cut: tuple[date, ...]  # months the range cuts, too many rows to rank exactly: walked
    #                        with the date filter (iterative scan)
    exact: tuple[tuple[date | None, date | None], ...]  # [from, until) ranked exactly

