"""Tests run against the real Postgres + pgvector and the real Redis that `make test` starts
(project/devstack.py, profile "test"). Nothing is mocked; the tiny deterministic "hash"
embedder stands in for MiniLM wherever the model itself is not under test."""

from __future__ import annotations

import os
import shutil
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
    from search.planner import forget_planner_memos

    forget_planner_memos()  # the planner's in-process copies of estimates and index names
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


# --- headless Chromium (Debian's, driven by Playwright) for the browser tests -------------------

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# Put on every browser test module: skipped, saying why, where Chromium is not installed.
needs_chromium = [
    pytest.mark.browser,
    pytest.mark.skipif(not shutil.which(CHROMIUM),
                       reason=f"browser tests skipped: Chromium not found at {CHROMIUM} "
                              "(apt-get install chromium)"),
]


@pytest.fixture
def browser():
    """A headless Chromium; Playwright's sync API runs an event loop in this thread, so
    Django's async-safety check is told to let the fixtures' database calls through."""
    from playwright.sync_api import sync_playwright

    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync"])
        yield chromium
        chromium.close()


@pytest.fixture
def browser_page(browser):
    return browser.new_page()
