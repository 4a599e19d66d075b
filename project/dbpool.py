"""The check the connection pool runs on a connection before handing it to a request.

psycopg_pool's stock check (what Django installs with CONN_HEALTH_CHECKS) sends an empty
query on every checkout: one Postgres round trip per request, for a connection that was in
use a few milliseconds earlier. An idle connection has nothing to read, so a readable socket
is the sign that something happened to it: the server wrote its goodbye (a restart, an
admin's pg_terminate_backend, idle_session_timeout) or closed it. Only then does this check
ask the server; a dead connection raises, the pool drops it and opens a new one, and the
request never sees it (tests/faults/test_services_down.py restarts Postgres under the server).
"""

from __future__ import annotations

import select

import psycopg
from psycopg.pq import ConnStatus


def quiet_socket_check(conn: psycopg.Connection) -> None:
    if conn.closed or conn.pgconn.status != ConnStatus.OK:
        raise psycopg.OperationalError("the pooled connection is closed")
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError) as exc:  # the descriptor is gone
        raise psycopg.OperationalError(f"the pooled connection's socket is gone: {exc}") from exc
    if readable:
        conn.execute("")  # raises on a connection the server has ended
