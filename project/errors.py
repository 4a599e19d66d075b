"""Error reports that do not leak credentials."""

from __future__ import annotations

import re

from django.views.debug import SafeExceptionReporterFilter


class SecretsHiddenFilter(SafeExceptionReporterFilter):
    # Django's list plus connection strings (DATABASE_URL, REDIS_URL, CELERY_BROKER_URL carry
    # the password) and the environment's own credentials; applied to settings and request.META.
    hidden_settings = re.compile(
        r"API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|_URL$|DSN|DATABASE|BROKER|CREDENTIAL",
        flags=re.IGNORECASE,
    )
