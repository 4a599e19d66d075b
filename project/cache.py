"""The cache that search may lose: Redis behind Django's cache API, failing open.

Everything Paperscope keeps in the cache (query vectors, facet counts, the index catalogue) can
be recomputed, so a Redis outage must cost speed, not answers: a read that cannot reach Redis
is a miss, a write is skipped. The socket timeouts keep a hung Redis from holding a request.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
_WARN_EVERY = 30.0  # seconds between "cache unreachable" log lines, not one per request
_last_warning = 0.0


def _unreachable(operation: str, exc: Exception) -> None:
    global _last_warning
    now = time.monotonic()
    if now - _last_warning > _WARN_EVERY:
        _last_warning = now
        log.warning("cache unreachable (%s: %s); serving without it", operation, exc)


class FailOpenRedisCache(RedisCache):
    def get(self, key: str, default: Any = None, version: int | None = None) -> Any:
        try:
            return super().get(key, default, version)
        except UNREACHABLE as exc:
            _unreachable("get", exc)
            return default

    def get_many(self, keys, version: int | None = None) -> dict:
        try:
            return super().get_many(keys, version)
        except UNREACHABLE as exc:
            _unreachable("get_many", exc)
            return {}

    def set(self, key: str, value: Any, timeout: Any = None, version: int | None = None,
            **kwargs: Any) -> None:
        try:
            super().set(key, value, timeout, version)
        except UNREACHABLE as exc:
            _unreachable("set", exc)

    def add(self, key: str, value: Any, timeout: Any = None, version: int | None = None,
            **kwargs: Any) -> bool:
        try:
            return super().add(key, value, timeout, version)
        except UNREACHABLE as exc:
            # "not added": callers use add() as a once-per-interval guard, and skipping the
            # guarded work while Redis is down is the safe side
            _unreachable("add", exc)
            return False

    def delete(self, key: str, version: int | None = None) -> bool:
        try:
            return super().delete(key, version)
        except UNREACHABLE as exc:
            _unreachable("delete", exc)
            return False
