"""The recall auditor: recall@10 of what the planner serves, measured against exact ranking,
per space and plan class, on queries sampled from the corpus itself.

HNSW recall drifts with data order and intrinsic dimensionality, and a filtered query's
recall depends on its plan, so benchmarks before a deployment say little about it afterwards.
Each run samples stored paper vectors, perturbs them (a query is near a paper but not on it)
and asks, for each, the filter shapes the planner tells apart: none; the paper's category
(its own graph when it has one); its calendar month (the month graphs); the half year before
it (an iterative walk over a broad filter); its first author (few matches: exact ranking).
Each query runs through `vector_ranking` as search runs it and through exact ranking over the
same filter; a query counts towards the class of the plan the planner actually chose.

Bounded cost: a few samples, a time budget (a run stops asking new queries when it is spent),
and a Postgres advisory lock so that two runs never overlap (the beat schedule, the command
and the dashboard button may all ask at once).
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import connection
from django.utils import timezone

from search.models import EmbeddingSpace, RecallAuditRun, RecallMeasurement
from search.operations.latency import percentile
from search.params import SearchFilters
from search.planner import vector_ranking

log = logging.getLogger(__name__)
K = 10
PLAN_CLASSES = ("unfiltered", "category_graph", "month_graphs", "iterative", "exact")
LOCK_KEY = 0x5EC0A0D17  # pg_try_advisory_lock key of the auditor (any fixed bigint)
NOISE = 0.35  # perturbation norm relative to the (unit) paper vector


class AuditBusy(Exception):
    """Another audit run holds the lock."""


def plan_class(plan: str) -> str:
    """The planner's plan name, as one of PLAN_CLASSES."""
    base = plan.split("+", 1)[0]
    if base == "hnsw":
        return "unfiltered"
    if base.startswith("category_graph"):
        return "category_graph"
    if base in ("month_graphs", "category_month_graphs"):
        return "month_graphs"
    if base == "hnsw_iterative":
        return "iterative"
    return "exact"  # exact_filtered (and the reference "exact")


@dataclass
class Probe:
    vector: np.ndarray
    filters: SearchFilters
    shape: str  # the filter shape asked (the class is the plan chosen)


def _sample_papers(space: EmbeddingSpace, n: int, seed: int) -> list[tuple]:
    """n papers with a current vector in the space: (vector text, categories, published,
    authors). Random by a seeded hash of the id, so it reads an index-ordered sample instead
    of sorting the whole space by random()."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT e.embedding::text, p.categories, p.published, p.authors "
            "FROM search_paperembedding e JOIN search_paper p "
            "ON p.id = e.paper_id AND p.content_hash = e.content_hash "
            "WHERE e.space_id = %s ORDER BY md5(e.paper_id::text || %s) LIMIT %s",
            [space.pk, str(seed), n])
        return cursor.fetchall()


def probes(space: EmbeddingSpace, *, samples: int, seed: int) -> list[Probe]:
    """The audit's queries: for each sampled paper, a perturbed copy of its vector under each
    filter shape that the paper itself satisfies (so no filter is empty)."""
    from search.selectors import vector_from_text

    rng = np.random.default_rng(seed)
    out = []
    for text, categories, published, authors in _sample_papers(space, samples, seed):
        base = vector_from_text(text)
        noise = rng.normal(size=base.shape).astype(np.float32)
        vector = base + NOISE * noise / np.linalg.norm(noise)
        vector = (vector / np.linalg.norm(vector)).astype(np.float32)
        out.append(Probe(vector, SearchFilters(), "unfiltered"))
        if categories:
            out.append(Probe(vector, SearchFilters(categories=(categories[0],)), "category"))
        if published:
            start = published.replace(day=1)
            end = (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
            out.append(Probe(vector, SearchFilters(published_after=start, published_before=end),
                             "month"))
            out.append(Probe(vector, SearchFilters(published_after=published - timedelta(days=180),
                                                   published_before=published), "half-year"))
        if authors:
            out.append(Probe(vector, SearchFilters(authors=(authors[0],)), "author"))
    random.Random(seed).shuffle(out)  # a spent budget then cuts every shape alike
    return out


@dataclass
class Outcome:
    plan: str
    recall: float
    ms: float
    exact_ms: float


def measure(space: EmbeddingSpace, probe: Probe, *, precision: str | None = None) -> Outcome | None:
    """One probe through the planner and through exact ranking; None if nothing matches."""
    started = time.perf_counter()
    served, plan = vector_ranking(space=space, vector=probe.vector, k=K, filters=probe.filters,
                                  precision=precision)
    ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    truth, _ = vector_ranking(space=space, vector=probe.vector, k=K, filters=probe.filters,
                              precision="exact")
    exact_ms = (time.perf_counter() - started) * 1000
    if not truth:
        return None
    found = len({pid for pid, _ in served} & {pid for pid, _ in truth})
    return Outcome(str(plan["plan"]), found / min(K, len(truth)), ms, exact_ms)


@contextmanager
def _audit_lock() -> Iterator[None]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
        if not cursor.fetchone()[0]:
            raise AuditBusy("a recall audit is already running")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])


def audit_spaces() -> list[EmbeddingSpace]:
    """What a periodic run audits: the active space of each audited aspect, and the model
    registry's shadows of them (so a candidate is measured before it is switched on)."""
    from search.models import SpaceRegistry

    aspects = list(getattr(settings, "RECALL_AUDIT_ASPECTS", ["generic"]))
    spaces = list(EmbeddingSpace.objects.filter(is_active=True, aspect__in=aspects).order_by("pk"))
    shadows = SpaceRegistry.objects.filter(aspect__in=aspects, shadow__isnull=False)
    spaces += [r.shadow for r in shadows.select_related("shadow")
               if r.shadow is not None and r.shadow not in spaces]
    return spaces


def recall_audit(*, spaces: list[EmbeddingSpace] | None = None, samples: int | None = None,
                 budget_seconds: float | None = None, seed: int | None = None,
                 precision: str | None = None) -> RecallAuditRun:
    """Run the audit and store recall@10, latency and plans per space and plan class.

    Raises AuditBusy when another run holds the lock. `samples` papers per space (each asks
    up to five filter shapes), at most `budget_seconds` of querying per space.
    """
    samples = samples or int(getattr(settings, "RECALL_AUDIT_SAMPLES", 12))
    budget = budget_seconds or float(getattr(settings, "RECALL_AUDIT_BUDGET", 20.0))
    target = float(getattr(settings, "RECALL_TARGET", 0.95))
    seed = int(time.time()) if seed is None else seed
    with _audit_lock():
        run = RecallAuditRun.objects.create(target=target)
        started = time.perf_counter()
        try:
            total = 0
            for space in (spaces if spaces is not None else audit_spaces()):
                total += _audit_space(run, space, samples=samples, budget=budget, seed=seed,
                                      precision=precision, target=target)
        except Exception as exc:
            RecallAuditRun.objects.filter(pk=run.pk).update(
                status=RecallAuditRun.Status.FAILED, finished_at=timezone.now(),
                seconds=time.perf_counter() - started, message=f"{type(exc).__name__}: {exc}")
            raise
        run.status = RecallAuditRun.Status.DONE
        run.finished_at = timezone.now()
        run.seconds = round(time.perf_counter() - started, 2)
        run.queries = total
        run.save(update_fields=["status", "finished_at", "seconds", "queries"])
        log.info("recall audit #%d: %d queries in %.1f s", run.pk, total, run.seconds)
        return run


def _audit_space(run: RecallAuditRun, space: EmbeddingSpace, *, samples: int, budget: float,
                 seed: int, precision: str | None, target: float) -> int:
    outcomes: dict[str, list[Outcome]] = defaultdict(list)
    deadline = time.perf_counter() + budget
    for probe in probes(space, samples=samples, seed=seed):
        if time.perf_counter() > deadline:
            break
        outcome = measure(space, probe, precision=precision)
        if outcome is not None:
            outcomes[plan_class(outcome.plan)].append(outcome)
    rows = []
    for cls, items in outcomes.items():
        recall = float(np.mean([o.recall for o in items]))
        rows.append(RecallMeasurement(
            run=run, space=space, plan_class=cls, measured_at=run.started_at,
            queries=len(items), recall_at_10=round(recall, 4),
            recall_min=round(min(o.recall for o in items), 4),
            latency_p50_ms=round(percentile([o.ms for o in items], 50), 2),
            latency_p95_ms=round(percentile([o.ms for o in items], 95), 2),
            exact_p50_ms=round(percentile([o.exact_ms for o in items], 50), 2),
            plans=dict(Counter(o.plan for o in items)), below_target=recall < target))
    RecallMeasurement.objects.bulk_create(rows)
    return sum(len(items) for items in outcomes.values())


# --- reads --------------------------------------------------------------------------------------

def latest_recall() -> list[RecallMeasurement]:
    """The newest measurement of every (space, plan class), active spaces first."""
    seen: set[tuple[int, str]] = set()
    out = []
    for m in (RecallMeasurement.objects.select_related("space")
              .order_by("-measured_at", "space_id", "plan_class")[:500]):
        if (m.space_id, m.plan_class) not in seen:
            seen.add((m.space_id, m.plan_class))
            out.append(m)
    return sorted(out, key=lambda m: (not m.space.is_active, m.space.name,
                                      PLAN_CLASSES.index(m.plan_class)
                                      if m.plan_class in PLAN_CLASSES else 99))


def recall_status() -> dict:
    """For /api/v1/status and the dashboard: the last run and any class below target."""
    run = RecallAuditRun.objects.filter(status=RecallAuditRun.Status.DONE).first()
    latest = latest_recall()
    return {
        "target": float(getattr(settings, "RECALL_TARGET", 0.95)),
        "last_run": run.started_at.isoformat() if run else None,
        "classes": [{"space": m.space.name, "plan_class": m.plan_class,
                     "recall_at_10": m.recall_at_10, "queries": m.queries,
                     "measured_at": m.measured_at.isoformat(), "below_target": m.below_target}
                    for m in latest],
        "below_target": [f"{m.space.name} {m.plan_class}" for m in latest if m.below_target],
    }


def recall_history(*, days: int = 14) -> dict:
    """recall@10 over time per (space, plan class), for the chart: one x axis (run times) and
    a series per class with None where a run did not measure it."""
    since = timezone.now() - timedelta(days=days)
    rows = list(RecallMeasurement.objects.filter(measured_at__gte=since)
                .order_by("measured_at").values_list("measured_at", "space__name", "plan_class",
                                                     "recall_at_10"))
    times = sorted({at for at, *_ in rows})
    index = {at: i for i, at in enumerate(times)}
    series: dict[str, list[float | None]] = {}
    for at, space, cls, recall in rows:
        series.setdefault(f"{space} · {cls}", [None] * len(times))[index[at]] = recall
    return {"times": [t.timestamp() for t in times], "series": series}

