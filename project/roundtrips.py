"""Round trips per request, for profiling (`manage.py bench e2e` reports them).

With ROUND_TRIP_COUNTS=1 in the environment, a request sent with the header
`X-Count-Round-Trips: 1` is answered with `X-SQL-Round-Trips` (every statement psycopg sends
for it: Django's queries, BEGIN / COMMIT / SET, the pool's connection check),
`X-Redis-Round-Trips` (every command or pipeline redis-py sends: cache, throttle) and
`X-SQL-Log` (the statements' first words). Counted at the drivers, per thread, so background
threads (the latency recorder's flush) and other requests are not. Off by default: nothing is
patched and the middleware passes requests through.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

_counting = threading.local()
ENABLED = os.environ.get("ROUND_TRIP_COUNTS") == "1"


def _note(kind: str, text: str = "") -> None:
    tally = getattr(_counting, "tally", None)
    if tally is not None:
        tally[kind] += 1
        if kind == "sql":
            tally["log"].append(" ".join(text.split()[:4])[:40])


def _patch() -> None:
    import psycopg
    from psycopg import _connection_base
    from redis.connection import AbstractConnection

    execute = psycopg.Cursor.execute
    exec_command = _connection_base.BaseConnection._exec_command
    send = AbstractConnection.send_packed_command

    @functools.wraps(execute)
    def counted_execute(self, query, *args, **kwargs):
        _note("sql", query if isinstance(query, str) else str(query)[:80])
        return execute(self, query, *args, **kwargs)

    @functools.wraps(exec_command)
    def counted_exec_command(self, command, *args, **kwargs):
        text = command.decode() if isinstance(command, bytes) else str(command)
        _note("sql", text)
        return exec_command(self, command, *args, **kwargs)

    @functools.wraps(send)
    def counted_send(self, command, *args, **kwargs):
        _note("redis")
        return send(self, command, *args, **kwargs)

    psycopg.Cursor.execute = counted_execute  # type: ignore[method-assign]
    _connection_base.BaseConnection._exec_command = counted_exec_command  # type: ignore[method-assign]
    AbstractConnection.send_packed_command = counted_send  # type: ignore[method-assign]


if ENABLED:
    _patch()


class RoundTripCountMiddleware:
    """First in the chain, so everything a request costs is inside it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not ENABLED or request.headers.get("X-Count-Round-Trips") != "1":
            return self.get_response(request)
        tally: dict[str, Any] = {"sql": 0, "redis": 0, "log": []}
        _counting.tally = tally
        try:
            response = self.get_response(request)
            # the connection goes back to the pool (and Django's request_finished) after
            # the response is built: closed here so its COMMIT / reset is counted too
            from django.db import close_old_connections

            close_old_connections()
        finally:
            _counting.tally = None
        response["X-SQL-Round-Trips"] = str(tally["sql"])
        response["X-Redis-Round-Trips"] = str(tally["redis"])
        response["X-SQL-Log"] = " | ".join(tally["log"])[:2000].encode("ascii", "replace").decode()
        return response
