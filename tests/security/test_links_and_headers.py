"""Stored XSS through a paper's link, and the headers that keep page content inert."""

import json

import pytest
from django.test import Client

from search.links import safe_link
from search.models import Paper
from search.services import papers_ingest_file

pytestmark = pytest.mark.django_db

HOSTILE_LINKS = [
    "javascript:alert(document.domain)",
    "JavaScript:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "//evil.example/x",
    "https:///no-host",
    "http://[bad",
]


@pytest.mark.parametrize("value", HOSTILE_LINKS)
def test_only_web_links_with_a_host_are_safe(value):
    assert safe_link(value) == ""


def test_web_links_pass_unchanged():
    assert safe_link("https://arxiv.org/abs/2503.22698v1") == "https://arxiv.org/abs/2503.22698v1"
    assert safe_link("HTTP://example.org/a?b=c#d") == "HTTP://example.org/a?b=c#d"


def _daily_row(arxiv_id, abs_link, title="A title"):
    return {"id": arxiv_id, "title": title, "summary": "An abstract about sonar.",
            "authors": ["A. Author"], "categories": ["cs.CV"], "abs": abs_link}


def test_a_hostile_arxiv_link_is_replaced_by_the_canonical_one_and_never_rendered(tmp_path):
    path = tmp_path / "arxiv-daily-2025-04-01.jsonl"
    rows = [_daily_row("2504.00001", "javascript:alert(document.domain)"),
            _daily_row("2504.00002", "data:text/html,<script>alert(1)</script>"),
            _daily_row("2504.00003", "https://arxiv.org/abs/2504.00003")]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")

    report = papers_ingest_file(path=path)

    assert (report.created, report.error_count) == (3, 0)  # the papers go in, the links do not
    links = dict(Paper.objects.values_list("arxiv_id", "source_url"))
    assert links == {"2504.00001": "https://arxiv.org/abs/2504.00001",
                     "2504.00002": "https://arxiv.org/abs/2504.00002",
                     "2504.00003": "https://arxiv.org/abs/2504.00003"}
    client = Client()
    for paper in Paper.objects.all():
        page = client.get(f"/papers/{paper.pk}/").content.decode()
        assert "javascript:" not in page and "data:text" not in page
        assert client.get(f"/api/v1/papers/{paper.pk}").json()["url"].startswith("https://")


def test_an_own_schema_row_with_a_hostile_url_is_reported_and_the_others_go_in(tmp_path):
    path = tmp_path / "papers.jsonl"
    rows = [{"url": "javascript:alert(1)", "title": "Bad", "abstract": "x"},
            {"url": "https://example.org/good", "title": "Good", "abstract": "y"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")

    report = papers_ingest_file(path=path)

    assert report.created == 1
    assert [e["line"] for e in report.errors] == [1]
    assert "http" in report.errors[0]["message"]


def test_a_link_stored_before_the_check_is_not_shown():
    paper = Paper.objects.create(title="Old row", abstract="x", arxiv_id="2501.00001",
                                 source_url="javascript:alert(1)")

    assert paper.external_url == "https://arxiv.org/abs/2501.00001"
    assert "javascript:" not in Client().get(f"/papers/{paper.pk}/").content.decode()


@pytest.mark.parametrize("path", ["/", "/labels/", "/api/docs/", "/api/v1/status"])
def test_every_response_carries_a_policy_without_inline_script(path):
    response = Client().get(path)

    policy = response.headers["Content-Security-Policy"]
    script_src = next(d for d in policy.split(";") if d.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert "object-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
