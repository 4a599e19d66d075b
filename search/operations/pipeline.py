"""The pipeline over time: periodic snapshots of vectors per space, broker queue depths and
live workers, written by a beat task (search.tasks.pipeline_snapshot) and read by the
dashboard, /metrics and /health/, so none of them counts vectors in a request.

Throughput per space is the change in current vectors between consecutive snapshots.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from search.models import EmbeddingSpace, Paper, PipelineSnapshot

log = logging.getLogger(__name__)
KEEP = timedelta(days=7)
WORKERS_KEY = "ops:workers"
WORKERS_TTL = 300  # seconds a ping answer is shown (the snapshot task pings every minute)
LAST_SWEEP_KEY = "ops:last-sweep"


def queue_depths() -> dict[str, int]:
    """Messages waiting in each Celery queue (LLEN on the Redis broker); {} if unreachable."""
    from project.celery import app

    try:
        with app.connection_for_write() as conn:
            client = conn.default_channel.client
            return {name: int(client.llen(name)) for name in settings.CELERY_TASK_QUEUES}
    except Exception as exc:  # noqa: BLE001 - any broker failure reads as "unknown", not a 500
        log.warning("queue depths unavailable: %s", exc)
        return {}


def workers_alive() -> list[str] | None:
    """Names of the Celery workers answering a ping within WORKER_PING_TIMEOUT; None when the
    broker is down. A ping always waits its whole timeout (it collects every reply), so only
    tasks and /health/ call this; the answer is cached for the dashboard (workers_seen)."""
    from project.celery import app

    try:
        replies = app.control.ping(timeout=float(getattr(settings, "WORKER_PING_TIMEOUT", 0.5)))
    except Exception as exc:  # noqa: BLE001 - broker unreachable
        log.warning("worker ping failed: %s", exc)
        return None
    names = sorted(name for reply in replies for name in reply)
    cache.set(WORKERS_KEY, {"workers": names, "at": time.time()}, WORKERS_TTL)
    return names


def workers_seen() -> dict[str, Any] | None:
    """The last ping's answer ({"workers": [...], "at": unix time}) without pinging: a
    request never waits for one."""
    return cache.get(WORKERS_KEY)


def sweep_done(*, queued: int) -> None:
    """Called by the embed_missing sweep: when it last ran, and what it queued."""
    cache.set(LAST_SWEEP_KEY, {"at": time.time(), "queued": queued}, None)


def last_sweep() -> dict[str, Any] | None:
    return cache.get(LAST_SWEEP_KEY)


def snapshot_take() -> PipelineSnapshot:
    """Record vectors per space, queue depths and live workers; forget snapshots older than a
    week. One count per space: a few hundred ms at 74.7k, in a task."""
    from search.selectors import embedding_coverage

    spaces = {s.name: s for s in EmbeddingSpace.objects.all()}
    coverage = embedding_coverage()
    data = {
        "spaces": {c.space: {"id": spaces[c.space].pk, "aspect": c.aspect, "active": c.active,
                             "embedded": c.embedded, "missing": max(0, c.total - c.embedded)}
                   for c in coverage if c.space in spaces},
        "queues": queue_depths(),
        "workers": workers_alive() or [],
    }
    total = coverage[0].total if coverage else Paper.objects.count()
    snapshot = PipelineSnapshot.objects.create(papers=total, data=data)
    PipelineSnapshot.objects.filter(taken_at__lt=timezone.now() - KEEP).delete()
    return snapshot


def latest_snapshot() -> PipelineSnapshot | None:
    return PipelineSnapshot.objects.order_by("-taken_at").first()


def throughput(*, hours: float = 6.0) -> dict[str, Any]:
    """Papers per second per space between consecutive snapshots of the last hours, and the
    queue depths over the same times (the dashboard's pipeline charts)."""
    since = timezone.now() - timedelta(hours=hours)
    snapshots = list(PipelineSnapshot.objects.filter(taken_at__gte=since).order_by("taken_at")
                     .values_list("taken_at", "data"))
    times: list[float] = []
    rates: dict[str, list[float | None]] = {}
    queues: dict[str, list[int]] = {}
    for (before_at, before), (after_at, after) in zip(snapshots, snapshots[1:], strict=False):
        seconds = (after_at - before_at).total_seconds()
        if seconds <= 0:
            continue
        times.append(after_at.timestamp())
        for name in set(rates) | set(after.get("spaces", {})):
            was = before.get("spaces", {}).get(name, {}).get("embedded")
            now = after.get("spaces", {}).get(name, {}).get("embedded")
            series = rates.setdefault(name, [None] * (len(times) - 1))
            series.append(None if was is None or now is None
                          else round(max(0, now - was) / seconds, 3))
        for name in set(queues) | set(after.get("queues", {})):
            queues.setdefault(name, [0] * (len(times) - 1)).append(
                int(after.get("queues", {}).get(name, 0)))
    return {"times": times, "rates": rates, "queues": queues}
