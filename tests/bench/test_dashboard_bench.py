"""`bench dashboard` runs end to end on a small corpus and reports what docs/benchmarks.md
records: render percentiles, the recorder's cost side by side, the audit's classes."""

import json

from django.core.management import call_command

from search import services
from tests.search.operations.conftest import make_papers


def test_bench_dashboard_reports_render_and_recorder_costs(db, tmp_path):
    services.papers_embed(paper_ids=make_papers(300), space=services.space_for_model())
    out = tmp_path / "dashboard.json"

    call_command("bench", "dashboard", "--searches", "5", "--rounds", "1", "--renders", "3",
                 "--audit-samples", "2", "--json", str(out))

    results = json.loads(out.read_text())
    assert results["papers"] == 300
    assert results["page"]["warm"]["p95_ms"] > 0 and results["page"]["cold"]["p95_ms"] > 0
    assert set(results["sections"]) == {"corpus", "pipeline", "search", "storage", "recall",
                                        "registry"}
    assert results["recorder"]["searches"] == 5
    assert results["recorder"]["call_alone_p50_ms"] > 0
    assert "unfiltered" in results["audit"]["classes"]
