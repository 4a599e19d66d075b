"""Paperscope's own Prometheus gauges, beside django-prometheus' request metrics on /metrics.

A collector (prometheus_client's custom-collector protocol) registered on the default
registry when the search app is ready: /metrics (django_prometheus' view) renders everything
registered there, so another app adds its gauges the same way, from its own AppConfig.ready()
(`prometheus_client.REGISTRY.register(MyCollector())`) without search knowing about it. That
is the hook recommend's digest backlog gauge uses.

Values come from what tasks recorded (the newest pipeline snapshot, the newest recall audit)
plus one LLEN per queue: a scrape never counts vectors.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)


class PaperscopeCollector(Collector):
    def describe(self) -> list:
        # Without describe() the registry calls collect() on registration to learn the
        # names: a database read while Django starts. Empty = nothing to check for clashes.
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            yield from self._collect()
        except Exception as exc:  # noqa: BLE001 - a broken gauge must not break the scrape
            log.warning("paperscope metrics unavailable: %s", exc)

    def _collect(self) -> Iterator[GaugeMetricFamily]:
        from search.operations import audit, latency, pipeline

        snapshot = pipeline.latest_snapshot()
        papers = GaugeMetricFamily("paperscope_papers", "Papers in the corpus (last snapshot)")
        missing = GaugeMetricFamily("paperscope_vectors_missing",
                                    "Papers without a current vector, per space (last snapshot)",
                                    labels=["space", "aspect", "active"])
        age = GaugeMetricFamily("paperscope_snapshot_age_seconds",
                                "Seconds since the last pipeline snapshot")
        if snapshot is not None:
            papers.add_metric([], snapshot.papers)
            for name, s in snapshot.data.get("spaces", {}).items():
                missing.add_metric([name, s.get("aspect", ""), str(bool(s.get("active"))).lower()],
                                   s.get("missing", 0))
            age.add_metric([], time.time() - snapshot.taken_at.timestamp())
        yield from (papers, missing, age)

        queue = GaugeMetricFamily("paperscope_queue_depth", "Messages waiting per Celery queue",
                                  labels=["queue"])
        for name, depth in pipeline.queue_depths().items():
            queue.add_metric([name], depth)
        yield queue

        recall = GaugeMetricFamily("paperscope_recall_at_10",
                                   "recall@10 of the last audit per space and plan class",
                                   labels=["space", "plan_class"])
        below = GaugeMetricFamily("paperscope_recall_below_target",
                                  "1 when the class's last recall@10 is below RECALL_TARGET",
                                  labels=["space", "plan_class"])
        for m in audit.latest_recall():
            recall.add_metric([m.space.name, m.plan_class], m.recall_at_10)
            below.add_metric([m.space.name, m.plan_class], int(m.below_target))
        yield from (recall, below)

        summary = latency.summary(window_seconds=300)
        p95 = GaugeMetricFamily("paperscope_search_latency_p95_ms",
                                "Search latency p95 over the last 5 minutes, per mode",
                                labels=["mode"])
        for row in summary.by_mode:
            p95.add_metric([row["mode"]], row["p95"])
        yield p95
        yield GaugeMetricFamily("paperscope_search_short_results",
                                "Searches in the last 5 minutes that came back short",
                                value=summary.short)
        yield GaugeMetricFamily("paperscope_throttled_requests",
                                "API requests refused by the rate limit in the last 5 minutes",
                                value=summary.throttled)
        sweep = pipeline.last_sweep()
        if sweep:
            yield GaugeMetricFamily("paperscope_last_sweep_age_seconds",
                                    "Seconds since the embed_missing sweep last ran",
                                    value=time.time() - float(sweep["at"]))


_registered = False


def register() -> None:
    """Register the collector once per process (AppConfig.ready may run twice in tests)."""
    global _registered
    if not _registered:
        from prometheus_client import REGISTRY

        REGISTRY.register(PaperscopeCollector())
        _registered = True
