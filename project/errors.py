"""Error reports that do not leak credentials."""

from __future__ import annotations

import re

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.debug import SafeExceptionReporterFilter


class SecretsHiddenFilter(SafeExceptionReporterFilter):
    # Django's list plus connection strings (DATABASE_URL, REDIS_URL, CELERY_BROKER_URL carry
    # the password) and the environment's own credentials; applied to settings and request.META.
    hidden_settings = re.compile(
        r"API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|_URL$|DSN|DATABASE|BROKER|CREDENTIAL",
        flags=re.IGNORECASE,
    )


def is_api(request: HttpRequest) -> bool:
    """Under /api/ every answer is JSON, errors included: clients parse it."""
    return request.path.startswith("/api/")


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api(request):
        return JsonResponse({"detail": f"no such endpoint or object: {request.path}"}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if is_api(request):
        return JsonResponse({"detail": "internal error; it is logged, and the request can be "
                                       "retried"}, status=500)
    return defaults.server_error(request)
