"""API rate limits counted in Redis in one atomic round trip.

DRF's stock throttles keep a list of timestamps in the cache and write it back after reading
it (a GET and a SET per throttle, two throttles per request): concurrent requests read the same
list and all get through (211 requests passed a 120/min limit in a measured minute). Here a
fixed window is one Lua call: INCR the window's counter, set its expiry on the first hit, return
the count and the time left. One throttle class picks the user's or the anonymous rate, so a
request costs one Redis round trip. If Redis cannot be reached the request is let through:
rate limiting protects the service, it must not take search down with it.
"""

from __future__ import annotations

import functools
import logging
import time

import redis
from django.conf import settings
from rest_framework.throttling import BaseThrottle

from project.cache import UNREACHABLE

log = logging.getLogger(__name__)

# KEYS[1] = window key; ARGV[1] = window length in ms. Returns {count, ms left in the window}.
_COUNT_IN_WINDOW = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}
"""
_PERIODS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """'120/min' -> (120, 60): requests per window of that many seconds."""
    count, _, period = rate.partition("/")
    try:
        return int(count), _PERIODS[period.strip().lower()]
    except (KeyError, ValueError):
        raise ValueError(f"bad rate {rate!r}: use e.g. 120/min, 10/s, 5000/day") from None


@functools.cache
def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=0.25,
                                socket_timeout=0.5)


@functools.cache
def _script():
    return _client().register_script(_COUNT_IN_WINDOW)


class RedisWindowThrottle(BaseThrottle):
    """Signed-in users get the "user" rate (per user), everyone else the "anon" rate (per
    client address), from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]."""

    def __init__(self) -> None:
        self._wait = 0.0

    # (untyped request / view: importing rest_framework.views here is circular, since DRF
    # imports the throttle classes while rest_framework.views is being loaded)
    def allow_request(self, request, view) -> bool:
        rates: dict[str, str] = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]  # type: ignore[assignment]
        if request.user and request.user.is_authenticated:
            scope, ident = "user", str(request.user.pk)
        else:
            scope, ident = "anon", self.get_ident(request)
        limit, period = parse_rate(rates[scope])
        window = int(time.time() // period)
        key = f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:throttle:{scope}:{ident}:{window}"
        try:
            count, left_ms = _script()(keys=[key], args=[period * 1000])
        except UNREACHABLE as exc:
            log.warning("throttle store unreachable (%s); request let through", exc)
            return True
        if int(count) <= limit:
            return True
        self._wait = max(int(left_ms), 0) / 1000.0
        return False

    def wait(self) -> float | None:
        return self._wait or None
