"""The recall auditor against its oracle: a plan forced to be poor is reported below target,
the defaults reach the target; runs never overlap; the status API flags the class."""

from __future__ import annotations

import threading

import pytest
from django.core.management import call_command
from django.db import connection, connections

from search.models import RecallAuditRun, RecallMeasurement
from search.operations import audit
from search.planner import limits


def classes(run: RecallAuditRun) -> dict[str, RecallMeasurement]:
    return {m.plan_class: m for m in run.measurements.all()}


def test_with_the_defaults_every_plan_class_reaches_the_target(audit_corpus, monkeypatch):
    # a corpus of 1,500 is "small" to the planner: lower the exact threshold so that broad
    # filters take the iterative walk and the author filters stay exact
    monkeypatch.setattr(limits, "EXACT_SCAN_MAX", 100)
    run = audit.recall_audit(samples=10, seed=3)

    found = classes(run)
    assert {"unfiltered", "iterative", "exact"} <= set(found)
    for m in found.values():
        assert m.recall_at_10 >= 0.95, (m.plan_class, m.recall_at_10, m.plans)
        assert not m.below_target
        assert m.queries > 0 and m.latency_p50_ms > 0
    assert run.status == "done" and run.seconds < 30


def test_a_tiny_ef_search_is_reported_below_target_and_flagged(audit_corpus, settings, client,
                                                              monkeypatch):
    settings.SEARCH_PRECISION = "float"
    settings.HNSW_EF_SEARCH = 1  # the walk keeps only k candidates: recall drops...
    monkeypatch.setattr(audit, "NOISE", 2.0)  # ...most for queries far from every paper
    run = audit.recall_audit(samples=10, seed=3)

    unfiltered = classes(run)["unfiltered"]
    assert unfiltered.recall_at_10 < 0.95
    assert unfiltered.below_target
    status = client.get("/api/v1/status").json()["recall"]
    assert status["target"] == 0.95
    assert f"{audit_corpus.name} unfiltered" in status["below_target"]
    row = next(c for c in status["classes"] if c["plan_class"] == "unfiltered")
    assert row["recall_at_10"] == unfiltered.recall_at_10 and row["below_target"] is True


@pytest.mark.django_db(transaction=True)
def test_a_second_run_is_refused_while_one_holds_the_lock(audit_corpus):
    holder_ready, release = threading.Event(), threading.Event()

    def hold() -> None:
        with connections["default"].cursor() as cursor:  # another connection, as another worker
            cursor.execute("SELECT pg_advisory_lock(%s)", [audit.LOCK_KEY])
            holder_ready.set()
            release.wait(10)
            cursor.execute("SELECT pg_advisory_unlock(%s)", [audit.LOCK_KEY])
        connections["default"].close()

    thread = threading.Thread(target=hold)
    thread.start()
    holder_ready.wait(10)
    try:
        with pytest.raises(audit.AuditBusy):
            audit.recall_audit(samples=2)
        assert not RecallAuditRun.objects.exists()
    finally:
        release.set()
        thread.join()
    assert audit.recall_audit(samples=2).status == "done"  # free again
    assert connection.connection is not None


def test_the_command_runs_an_audit_and_prints_each_class(audit_corpus, capsys):
    call_command("audit_recall", "--samples", "4")

    out = capsys.readouterr().out
    assert "unfiltered" in out and "recall@10" in out
    assert RecallAuditRun.objects.filter(status="done").count() == 1
