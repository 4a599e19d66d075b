"""The Redis connection of the operations recorders (latency samples, throttled requests).

Its own small client rather than Django's cache: the recorder pushes to a list and trims it
in one pipelined round trip, which the cache API cannot express. It fails open like the cache
(project/cache.py): losing a sample must never cost a search.
"""

from __future__ import annotations

import functools

import redis
from django.conf import settings

UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


@functools.cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=0.25, socket_timeout=0.5)


def client() -> redis.Redis:
    return _client(settings.REDIS_URL)


def key(name: str) -> str:
    """A key under the cache's prefix, so test runs and instances sharing a Redis stay apart."""
    return f"{settings.CACHES['default'].get('KEY_PREFIX', 'paperscope')}:ops:{name}"
