"""Search latency, recorded per request in Redis (a bounded window), summarised for the
dashboard and /metrics.

Recording appends the sample to a list in the process; a background thread writes what
gathered once a second with one pipelined LPUSH + LTRIM (~0.1 ms on loopback): never a
table write per query, and no Redis round trip inside a search (`bench dashboard` measures
both). A sample is a short text line
"<unix time> <mode> <plan> <ms> <short>", the newest first; the window keeps the last
SEARCH_LATENCY_WINDOW samples, so memory stays bounded whatever the traffic. Throttled
requests are a second list of timestamps.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from search.operations import redis as ops_redis

log = logging.getLogger(__name__)
SAMPLES = "search-latency"
THROTTLED = "throttled"
_WARN_EVERY = 30.0
_last_warning = 0.0


def _window() -> int:
    return int(getattr(settings, "SEARCH_LATENCY_WINDOW", 10_000))


def _write(items: list[tuple[str, str]]) -> None:
    """Push the lines onto their lists and trim them: one pipelined round trip."""
    global _last_warning
    try:
        pipe = ops_redis.client().pipeline(transaction=False)
        for name in {n for n, _ in items}:
            # LPUSH of several values puts the last one first: newest first, as read
            pipe.lpush(ops_redis.key(name), *[line for n, line in items if n == name])
            pipe.ltrim(ops_redis.key(name), 0, _window() - 1)
        pipe.execute()
    except ops_redis.UNREACHABLE as exc:  # fail open: lost samples, never a lost search
        if time.monotonic() - _last_warning > _WARN_EVERY:
            _last_warning = time.monotonic()
            log.warning("latency recorder: Redis unreachable (%s); samples skipped", exc)


# Samples wait in this process for at most SEARCH_LATENCY_FLUSH_INTERVAL seconds and are
# written by a background thread: a search then costs an append to a list, and a slow or
# hung Redis (socket timeout 0.5 s) never delays one. 0 writes in the request instead.
_buffer: list[tuple[str, str]] = []
_lock = threading.Lock()
_flusher: tuple[int, threading.Thread] | None = None  # (pid it runs in, thread)
MAX_BUFFER = 10_000  # beyond this (Redis gone for long) the oldest samples are dropped


def _flush_interval() -> float:
    return float(getattr(settings, "SEARCH_LATENCY_FLUSH_INTERVAL", 1.0))


def flush() -> None:
    """Write this process's waiting samples now (readers in this process call it first)."""
    with _lock:
        items = _buffer[:]
        _buffer.clear()
    if items:
        _write(items)


def _flush_forever() -> None:
    while True:
        time.sleep(max(0.05, _flush_interval()))
        flush()


def _push(name: str, line: str) -> None:
    global _flusher
    if _flush_interval() <= 0:
        _write([(name, line)])
        return
    with _lock:
        _buffer.append((name, line))
        if len(_buffer) > MAX_BUFFER:
            del _buffer[: len(_buffer) - MAX_BUFFER]
        # one thread per process (a forked child has none of its parent's threads)
        if _flusher is None or _flusher[0] != os.getpid() or not _flusher[1].is_alive():
            thread = threading.Thread(target=_flush_forever, name="latency-flush", daemon=True)
            thread.start()
            _flusher = (os.getpid(), thread)


atexit.register(flush)


def record_search(*, mode: str, plan: str, ms: float, short: bool) -> None:
    """Remember one search: its mode, the planner's plan, its latency and whether it came
    back with fewer results than it should (never, by the planner's promise)."""
    if not getattr(settings, "SEARCH_LATENCY_RECORDING", True):
        return
    # plan names hold no spaces ("hnsw", "category_graph+exact_fallback", ...)
    _push(SAMPLES, f"{time.time():.3f} {mode} {plan.replace(' ', '_')} {ms:.3f} {int(short)}")


def record_throttled() -> None:
    """Remember a request refused by the rate limit (429)."""
    if getattr(settings, "SEARCH_LATENCY_RECORDING", True):
        _push(THROTTLED, f"{time.time():.3f}")


@dataclass
class Sample:
    at: float
    mode: str
    plan: str
    ms: float
    short: bool


def samples(*, since_seconds: float | None = None) -> list[Sample]:
    """The recorded searches, newest first (empty when Redis is unreachable)."""
    flush()
    try:
        raw = ops_redis.client().lrange(ops_redis.key(SAMPLES), 0, -1)
    except ops_redis.UNREACHABLE:
        return []
    cutoff = time.time() - since_seconds if since_seconds else 0.0
    out = []
    for line in raw:
        try:
            text = line.decode() if isinstance(line, bytes) else str(line)
            at, mode, plan, ms, short = text.split(" ")
            sample = Sample(float(at), mode, plan, float(ms), short == "1")
        except ValueError:  # a line from another version: skipped, not fatal
            continue
        if sample.at >= cutoff:
            out.append(sample)
    return out


def throttled_times(*, since_seconds: float) -> list[float]:
    flush()
    try:
        raw = ops_redis.client().lrange(ops_redis.key(THROTTLED), 0, -1)
    except ops_redis.UNREACHABLE:
        return []
    cutoff = time.time() - since_seconds
    return [t for t in (float(x) for x in raw) if t >= cutoff]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(q / 100 * len(ordered)))) - 1]


def plan_family(plan: str) -> str:
    """The plan without its fallback suffix ("hnsw_iterative+exact_fallback" -> "hnsw_iterative")."""
    return plan.split("+", 1)[0]


@dataclass
class LatencySummary:
    window_seconds: int
    requests: int = 0
    short: int = 0
    throttled: int = 0
    by_mode: list[dict[str, Any]] = field(default_factory=list)  # mode, count, p50, p95
    by_plan: list[dict[str, Any]] = field(default_factory=list)
    # per-minute series for the charts: unix minute starts, then per mode requests/min and
    # p95, and throttled/min
    minutes: list[int] = field(default_factory=list)
    rate: dict[str, list[int]] = field(default_factory=dict)
    p95: dict[str, list[float | None]] = field(default_factory=dict)
    throttled_per_minute: list[int] = field(default_factory=list)


def summary(*, window_seconds: int = 3600) -> LatencySummary:
    """Request rate and latency p50 / p95 per mode and per plan over the last window."""
    recent = samples(since_seconds=window_seconds)
    throttled = throttled_times(since_seconds=window_seconds)
    out = LatencySummary(window_seconds, len(recent), sum(s.short for s in recent), len(throttled))
    groups: dict[str, dict[str, list[float]]] = {"mode": defaultdict(list), "plan": defaultdict(list)}
    for s in recent:
        groups["mode"][s.mode].append(s.ms)
        groups["plan"][plan_family(s.plan)].append(s.ms)
    for name, target in (("mode", out.by_mode), ("plan", out.by_plan)):
        for value, times in sorted(groups[name].items(), key=lambda item: -len(item[1])):
            target.append({name: value, "count": len(times), "p50": round(percentile(times, 50), 2),
                           "p95": round(percentile(times, 95), 2)})
    now_minute = int(time.time() // 60) * 60
    out.minutes = list(range(now_minute - window_seconds + 60, now_minute + 1, 60))
    index = {m: i for i, m in enumerate(out.minutes)}
    per_minute: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for s in recent:
        minute = int(s.at // 60) * 60
        if minute in index:
            per_minute[s.mode][minute].append(s.ms)
    for mode, buckets in sorted(per_minute.items()):
        out.rate[mode] = [len(buckets.get(m, [])) for m in out.minutes]
        out.p95[mode] = [round(percentile(buckets[m], 95), 2) if buckets.get(m) else None
                         for m in out.minutes]
    counts = Counter(int(t // 60) * 60 for t in throttled)
    out.throttled_per_minute = [counts.get(m, 0) for m in out.minutes]
    return out
