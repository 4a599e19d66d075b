"""Helpers for the tests of the code graphs (tests/search/services, tests/search/planner)."""

from __future__ import annotations

from datetime import date

from django.db import connection

from search.models import Paper


def most_frequent_category() -> str:
    from collections import Counter

    counts = Counter(c for cats in Paper.objects.values_list("categories", flat=True) for c in cats)
    return counts.most_common(1)[0][0]


def index_oid(name: str) -> int | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT oid FROM pg_class WHERE relname = %s", [name])
        row = cursor.fetchone()
        return row[0] if row else None


def index_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_class WHERE relname = %s", [name])
        return cursor.fetchone() is not None


def spread_over_months(months: list[date]) -> None:
    """Give the fixture papers dates spread evenly over the given months (one per day from
    the 1st, round robin), so each month holds a known share."""
    papers = list(Paper.objects.order_by("pk").values_list("pk", flat=True))
    for i, pk in enumerate(papers):
        month = months[i % len(months)]
        Paper.objects.filter(pk=pk).update(published=month.replace(day=1 + (i // len(months))))
