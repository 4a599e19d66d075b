"""Django's PostgreSQL backend, whose pool checks connections with project.dbpool's
quiet-socket test instead of a query per checkout.

Django builds the pool itself and passes `check=` (the stock query, or None) explicitly, so
a check cannot come through OPTIONS["pool"]; it is set on the pool Django built, before the
pool is opened (it opens on the first connection).
"""

from __future__ import annotations

from django.db.backends.postgresql import base

from project.dbpool import quiet_socket_check


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self):
        pool = super().pool
        if pool is not None and pool._check is None:  # psycopg_pool keeps `check=` here
            pool._check = quiet_socket_check
        return pool
