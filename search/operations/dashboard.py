"""Reads for the dashboard's sections: each returns the section's context, with the chart
data as plain JSON-able dicts ({"x": [unix seconds], "series": [{"label", "values"}]}) that
static/js/dashboard.js draws and the section's table repeats in numbers.

Everything here reads what tasks recorded (snapshots, audit runs, the latency window) or the
catalogue; the one scan of the paper table (papers over time) is cached for a minute.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.db.models import Case, IntegerField, Value, When

from search.models import EmbeddingSpace, Job, SpaceComparison, SpaceRegistry
from search.operations import audit, latency, pipeline, storage

SECTIONS = ("corpus", "pipeline", "search", "storage", "recall", "registry")
CORPUS_KEY = "ops:dashboard:corpus-days"


def _day_seconds(day) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def _cumulative(counts: dict, days: list) -> list[int]:
    total, out = 0, []
    for day in days:
        total += counts.get(day, 0)
        out.append(total)
    return out


def papers_over_time() -> dict[str, Any]:
    """Cumulative papers per day by first-seen date and by ingestion date: one scan of the
    paper table (GROUPING SETS), cached for a minute."""
    cached = cache.get(CORPUS_KEY)
    if cached is not None:
        return cached
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT first_seen, (created_at AT TIME ZONE 'UTC')::date AS ingested,
                   GROUPING(first_seen) AS by_ingestion, count(*)
            FROM search_paper
            GROUP BY GROUPING SETS ((first_seen), ((created_at AT TIME ZONE 'UTC')::date))""")
        rows = cursor.fetchall()
    seen = {d: n for d, _, g, n in rows if g == 0 and d is not None}
    ingested = {d: n for _, d, g, n in rows if g == 1 and d is not None}
    days = sorted(set(seen) | set(ingested))
    data = {"x": [_day_seconds(d) for d in days],
            "series": [{"label": "by first-seen date", "values": _cumulative(seen, days)},
                       {"label": "by ingestion date", "values": _cumulative(ingested, days)}],
            "rows": [(d.isoformat(), seen.get(d, 0), ingested.get(d, 0)) for d in days][-30:]}
    cache.set(CORPUS_KEY, data, 60)
    return data


def corpus_context() -> dict[str, Any]:
    failed_first = Case(When(status=Job.Status.FAILED, then=Value(0)), default=Value(1),
                        output_field=IntegerField())
    jobs = list(Job.objects.order_by(failed_first, "-created_at")[:15])
    over_time = papers_over_time()
    return {"papers_chart": {k: over_time[k] for k in ("x", "series")},
            "papers_rows": over_time["rows"],
            "papers": over_time["series"][0]["values"][-1] if over_time["x"] else 0,
            "jobs": [(job, job.errors[:5], max(0, len(job.errors) - 5)) for job in jobs]}


def pipeline_context() -> dict[str, Any]:
    flow = pipeline.throughput(hours=6)
    existing = set(EmbeddingSpace.objects.values_list("name", flat=True))
    # a deleted space's series would stay in the legend for the six hours its snapshots last
    flow["rates"] = {name: values for name, values in flow["rates"].items() if name in existing}
    snapshot = pipeline.latest_snapshot()
    sweep = pipeline.last_sweep()
    return {
        "throughput_chart": {"x": flow["times"],
                             "series": [{"label": name, "values": values}
                                        for name, values in sorted(flow["rates"].items())]},
        "queue_chart": {"x": flow["times"],
                        "series": [{"label": name, "values": values}
                                   for name, values in sorted(flow["queues"].items())]},
        "throughput_rows": [(datetime.fromtimestamp(t, UTC),
                             [flow["rates"][n][i] for n in sorted(flow["rates"])])
                            for i, t in enumerate(flow["times"])][-12:],
        "rate_names": sorted(flow["rates"]),
        "snapshot": snapshot,
        "spaces": sorted((snapshot.data.get("spaces", {}) if snapshot else {}).items(),
                         key=lambda item: (not item[1].get("active"), item[0])),
        "queues": pipeline.queue_depths(),
        "workers": (seen := pipeline.workers_seen()),
        "workers_at": datetime.fromtimestamp(seen["at"], UTC) if seen else None,
        "last_sweep": (datetime.fromtimestamp(sweep["at"], UTC), sweep["queued"]) if sweep else None,
    }


def search_context() -> dict[str, Any]:
    summary = latency.summary(window_seconds=3600)
    x = [float(m) for m in summary.minutes]
    return {
        "summary": summary,
        "rate_chart": {"x": x, "series": [{"label": f"{mode} /min", "values": values}
                                          for mode, values in summary.rate.items()]
                       + [{"label": "throttled /min", "values": summary.throttled_per_minute}]},
        "p95_chart": {"x": x, "series": [{"label": f"{mode} p95 ms", "values": values}
                                         for mode, values in summary.p95.items()]},
    }


def _bars(items: list[tuple[str, int]]) -> list[dict[str, Any]]:
    """Rows for the server-side SVG bar chart: label, bytes and the bar's width (0..100)."""
    biggest = max((size for _, size in items), default=0) or 1
    return [{"label": label, "bytes": size, "width": round(100 * size / biggest, 1)}
            for label, size in items]


def storage_context() -> dict[str, Any]:
    tables = storage.table_sizes()
    groups = storage.index_groups()
    return {"tables": tables, "groups": groups,
            "table_bars": _bars([(t.table, t.total) for t in tables[:8]]),
            "index_bars": _bars([(f"{g.space} · {g.kind}", g.bytes) for g in groups])}


def recall_context() -> dict[str, Any]:
    history = audit.recall_history(days=14)
    latest = audit.latest_recall()
    from search.models import RecallAuditRun

    return {"recall_chart": {"x": history["times"],
                             "series": [{"label": name, "values": values}
                                        for name, values in sorted(history["series"].items())],
                             "y_min": 0.0, "y_max": 1.0},
            "latest": latest, "below": [m for m in latest if m.below_target],
            "runs": list(RecallAuditRun.objects.all()[:5]),
            "target": audit.recall_status()["target"]}


def registry_context() -> dict[str, Any]:
    snapshot = pipeline.latest_snapshot()
    counts = snapshot.data.get("spaces", {}) if snapshot else {}
    registries = {r.aspect: r for r in SpaceRegistry.objects.all()}
    spaces = []
    for space in EmbeddingSpace.objects.order_by("aspect", "-is_active", "-created_at"):
        reg = registries.get(space.aspect)
        role = ("active" if space.is_active else "shadow" if reg and reg.shadow_id == space.pk
                else "previous" if reg and reg.previous_id == space.pk else "superseded")
        spaces.append({"space": space, "role": role, "counts": counts.get(space.name)})
    return {"spaces": spaces, "registries": registries,
            "generic": registries.get("generic"),
            "comparisons": list(SpaceComparison.objects.select_related("baseline", "candidate")[:5]),
            "snapshot": snapshot}


def section_context(name: str) -> dict[str, Any]:
    started = time.perf_counter()
    context = globals()[f"{name}_context"]()
    context["section"] = name
    context["built_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return context

