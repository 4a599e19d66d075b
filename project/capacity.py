"""How big the web server is, how many Postgres connections each process may hold, and the
`max_connections` that follows from both: computed here, in one place, for devstack (which
starts Postgres with it and gunicorn with the sizes) and settings (which sizes the pool).

Plain Python, no Django: devstack reads it before settings can be loaded.

    max_connections = web workers x pool max          (gunicorn: one pool per process)
                    + Celery worker processes x 2     (each child's task connection, plus
                                                       the parent's)
                    + 1                               (beat)
                    + DB_HEADROOM                     (manage.py commands, psql, monitoring,
                                                       Postgres' own superuser slots)

A web thread holds at most one connection during a request (CONN_MAX_AGE=0: returned to the
pool when the request ends), so a pool of WEB_THREADS never makes a thread wait while that
worker has a free thread; DB_POOL_MAX below it makes threads queue for a connection (up to
DB_POOL_TIMEOUT s, then a 503 with the reason) instead of Postgres refusing the login.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def cpu_count() -> int:
    """CPUs this process may run on (a container's or taskset's share, not the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Capacity:
    web_workers: int  # gunicorn processes; each loads the query encoder (~150 MB resident)
    web_threads: int  # threads per process (gthread): requests in flight per process
    pool_min: int  # connections each process keeps open when idle
    pool_max: int  # connections each process may hold at once
    pool_timeout: float  # seconds a request waits for a pooled connection before a 503
    worker_concurrency: int  # Celery worker processes
    headroom: int

    @property
    def web_connections(self) -> int:
        return self.web_workers * self.pool_max

    @property
    def max_connections(self) -> int:
        return self.web_connections + 2 * self.worker_concurrency + 1 + self.headroom


def capacity() -> Capacity:
    """The sizes from the environment, with defaults from the CPU count: one gunicorn process
    per CPU (the encoder and Python hold the GIL; more processes than CPUs only add memory)
    and 4 threads each (a request waits on Postgres and Redis most of its time)."""
    threads = max(1, _int("WEB_THREADS", 4))
    pool_max = max(1, min(_int("DB_POOL_MAX", threads), threads))
    return Capacity(
        web_workers=max(1, _int("WEB_WORKERS", cpu_count())),
        web_threads=threads,
        pool_min=max(0, min(_int("DB_POOL_MIN", 1), pool_max)),
        pool_max=pool_max,
        pool_timeout=float(os.environ.get("DB_POOL_TIMEOUT", "") or 5.0),
        worker_concurrency=max(1, _int("WORKER_CONCURRENCY", 1)),
        headroom=max(5, _int("DB_HEADROOM", 20)),
    )


def max_connections() -> int:
    """What the embedded Postgres is started with (PAPERSCOPE_PG_MAX_CONNECTIONS overrides;
    never below the sum above)."""
    needed = capacity().max_connections
    return max(needed, _int("PAPERSCOPE_PG_MAX_CONNECTIONS", needed))
