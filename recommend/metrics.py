"""The reader's loop on /metrics: the digest backlog and the ranking models, registered on
prometheus_client's default registry from this app's ready() (the hook search's metrics
module documents; search does not know about these)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)


class ReaderCollector(Collector):
    def describe(self) -> list:
        return []  # else the registry collects (reads the database) while Django starts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            yield from self._collect()
        except Exception as exc:  # noqa: BLE001 - a broken gauge must not break the scrape
            log.warning("reader metrics unavailable: %s", exc)

    def _collect(self) -> Iterator[GaugeMetricFamily]:
        from recommend import digests
        from recommend.models import Digest, ReaderModel

        yield GaugeMetricFamily("paperscope_digest_backlog",
                                "Readers whose digest of the current period is due and not sent",
                                value=len(digests.due_readers()))
        yield GaugeMetricFamily("paperscope_digests_unsent",
                                "Digests composed but not yet accepted by the mail server (retrying)",
                                value=Digest.objects.filter(status=Digest.Status.COMPOSED).count())
        models = GaugeMetricFamily("paperscope_reader_models", "Trained reader ranking models, by kind",
                                   labels=["kind"])
        for kind in ("linear", "centroid"):
            models.add_metric([kind], ReaderModel.objects.filter(kind=kind).count())
        yield models


_registered = False


def register() -> None:
    global _registered
    if not _registered:
        from prometheus_client import REGISTRY

        REGISTRY.register(ReaderCollector())
        _registered = True
