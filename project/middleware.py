"""Answers for requests the app cannot serve: hostile input (400) and a backing service that is
down (503 with a reason), instead of a 500 with a stack trace."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

from project.cache import UNREACHABLE
from project.errors import is_api

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 10
NUL = "\x00"


def _nul_field(request: HttpRequest) -> str | None:
    """The first parameter carrying a NUL character (Postgres text cannot hold one)."""
    if NUL in request.path:
        return "path"
    sources = [request.GET]
    if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
        sources.append(request.POST)  # (uploads are checked row by row by ingestion)
    for source in sources:
        for name, values in source.lists():
            if NUL in name or any(NUL in value for value in values):
                return name.replace(NUL, "\\0")
    if request.content_type == "application/json" and b"\\u0000" in request.body:
        return "body"
    return None


class RejectNulBytesMiddleware:
    """A NUL byte in any parameter is refused here, once, for every page and endpoint."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        field = _nul_field(request)
        if field is None:
            return self.get_response(request)
        message = "contains a NUL character (\\0), which is not allowed"
        if is_api(request):
            return JsonResponse({"detail": "invalid parameters", "errors": {field: message}},
                                status=400)
        return HttpResponse(f"Bad request: {field} {message}.", status=400,
                            content_type="text/plain; charset=utf-8")


def _pool_exhausted(exc: BaseException) -> bool:
    """The request waited DB_POOL_TIMEOUT s for a pooled connection (project/capacity.py):
    Postgres is up, this process is at its bound."""
    from psycopg_pool import PoolTimeout

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, PoolTimeout):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class ServiceUnavailableMiddleware:
    """The database or Redis unreachable: 503 with the reason and Retry-After; JSON under
    /api/, a plain page elsewhere (rendered without touching the database or the session)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if isinstance(exc, (OperationalError, InterfaceError)):
            service = "database"
        elif isinstance(exc, UNREACHABLE):
            service = "Redis (broker / cache)"
        else:
            return None
        log.warning("%s unavailable during %s %s: %s", service, request.method, request.path,
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        reason = f"the {service} is not reachable; try again shortly"
        if _pool_exhausted(exc):
            reason = ("every database connection of this server process is busy (the pool's "
                      "DB_POOL_MAX); try again shortly")
        if is_api(request):
            response: HttpResponse = JsonResponse(
                {"detail": "service temporarily unavailable", "reason": reason}, status=503)
        else:
            response = HttpResponse(render_to_string("503.html", {"reason": reason}), status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
