"""/health/: database, cache, Redis, broker, workers and embedding lag (django-health-check).

Each check is named by what it checks ("database", "workers", ...): the JSON answer
(`/health/?format=json` or `Accept: application/json`) is {name: "OK" | "<kind>: <reason>"},
200 when all pass and 503 (not the library's 500: a failed dependency is "unavailable", and
the API never answers 500) when any fails. `/health/web/` checks only what the web process
itself needs (database, cache, Redis): docker/compose.yml's web healthcheck, so a stopped
worker does not mark the web container unhealthy.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from typing import Any

from django.conf import settings
from health_check.base import HealthCheck
from health_check.checks import Cache, Database
from health_check.contrib.redis import Redis
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView


class NamedDatabase(Database):
    def __repr__(self) -> str:
        return "database"


class NamedCache(Cache):
    def __repr__(self) -> str:
        return "cache"


def _redis_client():
    from redis.asyncio import Redis as AsyncRedis

    return AsyncRedis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)


@dataclasses.dataclass
class NamedRedis(Redis):
    def __repr__(self) -> str:
        return "redis"


@dataclasses.dataclass
class Broker(HealthCheck):
    """The Celery broker answers (LLEN of each queue)."""

    def __repr__(self) -> str:
        return "broker"

    def run(self) -> None:
        from search.operations.pipeline import queue_depths

        if not queue_depths():
            raise ServiceUnavailable("the Celery broker is not reachable")


@dataclasses.dataclass
class Workers(HealthCheck):
    """At least one Celery worker answers a ping (a fresh ping, not the dashboard's cache)."""

    timeout = datetime.timedelta(seconds=3)

    def __repr__(self) -> str:
        return "workers"

    def run(self) -> None:
        from search.operations.pipeline import workers_alive

        workers = workers_alive()
        if workers is None:
            raise ServiceUnavailable("the broker is unreachable, so no worker can be pinged")
        if not workers:
            raise ServiceUnavailable("no Celery worker answered a ping")


@dataclasses.dataclass
class EmbeddingLag(HealthCheck):
    """Vectors missing from an active space are being computed: fails when the pipeline
    snapshots are stale (beat is down) or an active space lacked vectors for
    EMBEDDING_LAG_MAX seconds without progress."""

    def __repr__(self) -> str:
        return "embedding_lag"

    def run(self) -> None:
        from search.models import PipelineSnapshot

        snapshots = list(PipelineSnapshot.objects.order_by("-taken_at")[:1])
        if not snapshots:
            return  # a fresh install: no snapshot yet, nothing to judge
        latest = snapshots[0]
        interval = float(getattr(settings, "PIPELINE_SNAPSHOT_INTERVAL", 60))
        if time.time() - latest.taken_at.timestamp() > max(5 * interval, 300):
            raise ServiceUnavailable("no pipeline snapshot for over 5 intervals: is beat running?")
        window = datetime.timedelta(seconds=float(getattr(settings, "EMBEDDING_LAG_MAX", 900)))
        earlier = (PipelineSnapshot.objects.filter(taken_at__lte=latest.taken_at - window)
                   .order_by("-taken_at").first())
        if earlier is None:
            return
        for name, now in latest.data.get("spaces", {}).items():
            before = earlier.data.get("spaces", {}).get(name)
            if (now.get("active") and now.get("missing") and before and before.get("missing")
                    and now.get("embedded", 0) <= before.get("embedded", 0)):
                raise ServiceUnavailable(
                    f"{name} lacks {now['missing']} vectors and made no progress in "
                    f"{int(window.total_seconds())} s")


class PaperscopeHealth(HealthCheckView):
    checks: tuple[Any, ...] = (NamedDatabase, NamedCache, (NamedRedis, {"client_factory": _redis_client}),
              Broker, Workers, EmbeddingLag)

    async def get(self, request, *args, **kwargs):
        response = await super().get(request, *args, **kwargs)
        if response.status_code == 500:
            response.status_code = 503
            response["Retry-After"] = "10"
        return response


class WebHealth(PaperscopeHealth):
    checks = (NamedDatabase, NamedCache, (NamedRedis, {"client_factory": _redis_client}))
