"""Tests run against the real Postgres + pgvector and the real Redis that `make test` starts
(project/devstack.py, profile "test"). Nothing is mocked; the tiny deterministic "hash"
embedder stands in for MiniLM wherever the model itself is not under test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
TEST_EMBEDDER = "hash:256"


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path):
    settings.EMBEDDING_MODEL = TEST_EMBEDDER
    settings.UPLOAD_DIR = tmp_path / "uploads"
    settings.CACHES["default"]["KEY_PREFIX"] = f"test-{os.getpid()}"
    from django.core.cache import cache

    cache.clear()  # throttling counters live in the cache
    yield


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def celery_app_configured():
    from project.celery import app

    return app


@pytest.fixture
def celery_worker(transactional_db, celery_app_configured):
    """A real Celery worker (in a thread) consuming from the real Redis broker."""
    from celery.contrib.testing.worker import start_worker
    from django.conf import settings

    app = celery_app_configured
    # Drop messages left over from earlier tests so this worker sees only this test's tasks.
    with app.connection_for_write() as conn:
        conn.default_channel.client.delete("celery", *settings.CELERY_TASK_QUEUES)
    with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False,
                      shutdown_timeout=30) as worker:
        yield worker


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.2, what: str = "condition"):
    """Poll until predicate() is truthy; returns its value or fails the test saying `what`."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"{what}: not met within {timeout:.0f} s")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """After the session, end connections that worker / live-server threads left open, so the
    test database can be dropped cleanly."""
    yield
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")
