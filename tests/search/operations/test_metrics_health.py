"""/metrics carries the documented gauges; /health/ names each check and reports a stopped
worker as down (503), with a real Celery worker on the real broker."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client

from search.operations import audit, pipeline


def metric_lines(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(name + "{") or line.startswith(name + " ")]


def test_metrics_expose_vectors_missing_queue_depth_and_recall(audit_corpus, client):
    from search.models import Paper

    Paper.objects.create(title="Unembedded", abstract="No vector yet.", content_hash="x")
    pipeline.snapshot_take()
    audit.recall_audit(samples=3, seed=1)

    body = client.get("/metrics").content.decode()

    missing = metric_lines(body, "paperscope_vectors_missing")
    assert missing == [f'paperscope_vectors_missing{{active="true",aspect="generic",'
                       f'space="{audit_corpus.name}"}} 1.0']
    assert metric_lines(body, "paperscope_papers") == ["paperscope_papers 1501.0"]
    assert {line.split('"')[1] for line in metric_lines(body, "paperscope_queue_depth")} == {
        "ingest", "embed", "maintenance"}
    recall = metric_lines(body, "paperscope_recall_at_10")
    assert any('plan_class="unfiltered"' in line for line in recall)
    assert "django_http_requests_total_by_method_total" in body  # django-prometheus' own


@pytest.mark.django_db(transaction=True)
def test_health_reports_each_check_and_the_worker_going_down(celery_worker_factory):
    with celery_worker_factory():
        cache.clear()
        up = Client().get("/health/?format=json")
        assert up.status_code == 200, up.json()
        assert up.json() == {"database": "OK", "cache": "OK", "redis": "OK", "broker": "OK",
                             "workers": "OK", "embedding_lag": "OK"}

    down = Client().get("/health/?format=json")
    assert down.status_code == 503
    assert down.json()["workers"] == "Unavailable: no Celery worker answered a ping"
    assert down.json()["database"] == "OK"
    assert Client().get("/health/web/?format=json").status_code == 200  # web itself is fine
