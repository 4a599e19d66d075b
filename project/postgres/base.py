"""Django's PostgreSQL backend with two changes to its connection pool:

- the pool checks a connection with project.dbpool's quiet-socket test instead of a query per
  checkout (Django passes `check=` itself, so it cannot come through OPTIONS["pool"]: it is
  set on the pool Django built, before the pool opens on the first connection);
- a request waiting for a connection tells "Postgres is down" from "every connection is
  busy": the pool waits in short steps (OPTIONS["pool"]["timeout"]), and after a step without
  a connection one direct connection attempt says whether the server is there. Down: the
  request fails at once (a 503 saying the database is not reachable) instead of after the
  whole DB_POOL_TIMEOUT; busy: it waits on, up to DB_POOL_TIMEOUT (then a 503 saying so).
"""

from __future__ import annotations

import time

import psycopg
from django.conf import settings
from django.db.backends.postgresql import base
from psycopg_pool import PoolTimeout

from project.dbpool import quiet_socket_check


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self):
        pool = super().pool
        if pool is not None and pool._check is None:  # psycopg_pool keeps `check=` here
            pool._check = quiet_socket_check
        return pool

    def get_new_connection(self, conn_params):
        if self.pool is None:
            return super().get_new_connection(conn_params)
        deadline = time.monotonic() + float(getattr(settings, "DB_POOL_TIMEOUT", 5.0))
        while True:
            try:
                return super().get_new_connection(conn_params)
            except PoolTimeout:
                if time.monotonic() >= deadline:
                    raise
                _refuse_if_unreachable(conn_params)


def _refuse_if_unreachable(conn_params: dict) -> None:
    try:
        psycopg.connect(**conn_params, connect_timeout=2).close()
    except psycopg.OperationalError as exc:
        raise psycopg.OperationalError(f"the database is not reachable: {exc}") from exc
