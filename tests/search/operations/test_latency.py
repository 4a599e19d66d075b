"""Every search leaves a sample (mode, plan, latency) in the bounded Redis window; throttled
requests are counted; the summary's percentiles are those of the samples."""

from __future__ import annotations

import pytest
from django.test import Client

from search.operations import latency
from search.operations import redis as ops_redis
from search.params import SearchFilters, SearchParams
from search.selectors import paper_search


@pytest.fixture(autouse=True)
def _empty_window():
    latency.flush()  # samples of earlier tests still waiting in this process
    ops_redis.client().delete(ops_redis.key(latency.SAMPLES), ops_redis.key(latency.THROTTLED))


def test_each_search_is_recorded_with_its_mode_and_plan(audit_corpus):
    paper_search(params=SearchParams(query="graph neural network", k=10, mode="semantic"))
    paper_search(params=SearchParams(query="graph neural network", k=10, mode="keyword"))
    paper_search(params=SearchParams(query="sonar", k=5, mode="hybrid",
                                     filters=SearchFilters(categories=("cs.RO",))))

    recorded = latency.samples()
    assert [(s.mode, s.plan) for s in recorded] == [
        ("hybrid", "exact_filtered"), ("keyword", "keyword"), ("semantic", "hnsw")]
    assert all(s.ms > 0 and not s.short for s in recorded)
    summary = latency.summary(window_seconds=600)
    assert summary.requests == 3 and summary.short == 0
    assert {r["mode"] for r in summary.by_mode} == {"semantic", "keyword", "hybrid"}
    assert sum(summary.rate["semantic"]) == 1


def test_the_window_is_bounded(audit_corpus, settings):
    settings.SEARCH_LATENCY_WINDOW = 5
    for i in range(8):
        paper_search(params=SearchParams(query=f"query {i}", k=3, mode="keyword"))
    assert len(latency.samples()) == 5


def test_recording_can_be_switched_off(audit_corpus, settings):
    settings.SEARCH_LATENCY_RECORDING = False
    paper_search(params=SearchParams(query="graph", k=3, mode="semantic"))
    assert latency.samples() == []


def test_percentiles_are_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert latency.percentile(values, 50) == 50.0
    assert latency.percentile(values, 95) == 95.0
    assert latency.percentile([], 95) == 0.0


@pytest.mark.django_db(transaction=True)
def test_throttled_requests_are_counted(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"anon": "3/hour", "user": "50/hour"}}
    codes = [Client().get("/api/v1/search?q=x&mode=keyword").status_code for _ in range(5)]

    assert codes.count(429) == 2
    assert latency.summary(window_seconds=600).throttled == 2


def test_a_search_does_not_wait_for_redis(audit_corpus, settings):
    """Samples wait in the process and a background thread writes them: with Redis
    unreachable a search neither fails nor waits for the socket timeout."""
    import time

    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    latency.flush()
    started = time.perf_counter()
    result = paper_search(params=SearchParams(query="graph neural network", k=5, mode="semantic"))
    assert len(result.results) == 5
    assert time.perf_counter() - started < 0.25
    latency.flush()  # the write fails open
