"""Production mode refuses example secrets; error pages hide connection strings."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from project.errors import SecretsHiddenFilter
from project.settings import weak_secret_reason

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("secret", ["change-me", "dev-only-insecure-secret-key-change-me",
                                    "django-insecure-abc", "short", "a" * 60])
def test_weak_secrets_are_named(secret):
    assert weak_secret_reason(secret)


def test_a_generated_secret_passes():
    import secrets

    assert weak_secret_reason(secrets.token_urlsafe(50)) is None


def test_debug_off_with_the_example_secret_refuses_to_start():
    env = {**os.environ, "DEBUG": "0", "SECRET_KEY": "change-me"}
    result = subprocess.run([sys.executable, "-c", "import django; from django.conf import "
                             "settings; settings.SECRET_KEY"], env=env, cwd=ROOT,
                            capture_output=True, text=True)

    assert result.returncode != 0
    assert "SECRET_KEY is weak" in result.stderr


def test_connection_urls_are_hidden_from_error_reports():
    hidden = SecretsHiddenFilter().hidden_settings

    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "SECRET_KEY"):
        assert hidden.search(name), name
    assert not hidden.search("TIME_ZONE")
