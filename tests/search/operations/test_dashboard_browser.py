"""The dashboard in headless Chromium: a staff user sees the charts drawn with their data
points, the recall table and a failed job with its errors, sections refreshed by htmx, and no
Content-Security-Policy violation; another user is refused."""

from __future__ import annotations

import os
import time

from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.test import Client

from search.models import Job
from search.operations import audit, pipeline
from search.params import SearchParams
from search.selectors import paper_search
from tests.conftest import needs_chromium

pytestmark = needs_chromium


def signed_in_page(browser, live_server, **user_fields):
    """A page whose browser carries the session of a freshly made user."""
    user = get_user_model().objects.create_user(password="x" * 12, **user_fields)
    client = Client()
    client.force_login(user)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies([{"name": django_settings.SESSION_COOKIE_NAME,
                          "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value,
                          "url": live_server.url}])
    return context.new_page()


def test_a_staff_user_sees_the_plots_the_recall_table_and_the_failed_job(
        live_server, browser, audit_corpus, transactional_db):
    Job.objects.create(kind="ingest", status="failed", description="ingest broken.jsonl",
                       total=3, processed=3, message="failed: 2 rows could not be read",
                       errors=[{"file": "broken.jsonl", "line": 2, "message": "invalid JSON"},
                               {"file": "broken.jsonl", "line": 3, "message": "no title"}])
    pipeline.snapshot_take()
    for query in ("graph neural network", "sonar robot grasping", "protein folding"):
        paper_search(params=SearchParams(query=query, k=10, mode="semantic"))
    for seed in (1, 2):  # two runs: a line over time
        audit.recall_audit(samples=3, seed=seed)
    pipeline.snapshot_take()

    page = signed_in_page(browser, live_server, username="ops", is_staff=True)
    violations: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text)
            if "Content Security Policy" in msg.text else None)
    page.goto(live_server.url + "/dashboard/")

    page.wait_for_selector("#sec-recall .chart canvas", timeout=15000)
    recall_chart = page.locator("#sec-recall .chart")
    assert int(recall_chart.get_attribute("data-points")) == 2
    assert page.locator("#sec-corpus .chart canvas").count() == 1
    assert int(page.locator("#sec-corpus .chart").get_attribute("data-points")) >= 1
    assert int(page.locator("#sec-pipeline [data-chart=chart-throughput]").get_attribute("data-points")) == 1
    assert page.locator("#sec-storage svg.bars rect").count() >= 3
    rows = page.locator("#sec-recall table.recall tbody tr")
    assert rows.count() >= 2
    assert "unfiltered" in page.locator("#sec-recall table.recall").inner_text()
    failed = page.locator("#sec-corpus tr.job-failed")
    assert "broken.jsonl:2: invalid JSON" in failed.inner_text()
    assert "semantic" in page.locator("#sec-search table").first.inner_text()

    # htmx replaces the search section every 10 s: its charts are drawn again
    page.evaluate("document.querySelector('#sec-search').dataset.marker = 'old'")
    # (polled from here: wait_for_function evaluates a string in the page, which the CSP forbids)
    deadline = time.monotonic() + 20
    while page.evaluate("document.querySelector('#sec-search').dataset.marker") == "old":
        assert time.monotonic() < deadline, "the search section was not refreshed by htmx"
        page.wait_for_timeout(250)
    page.wait_for_selector("#sec-search .chart canvas", timeout=5000)

    if os.environ.get("DASHBOARD_SCREENSHOT"):
        page.screenshot(path=os.environ["DASHBOARD_SCREENSHOT"], full_page=True)
    assert violations == []


def test_another_user_is_refused(live_server, browser, transactional_db):
    page = signed_in_page(browser, live_server, username="reader")
    response = page.goto(live_server.url + "/dashboard/")
    assert response is not None and response.status == 403
    assert page.locator("canvas").count() == 0
