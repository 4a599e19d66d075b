"""Every recommend test starts with the nearest names' embeddings not built (a cache
directory of its own, nothing loaded in the process), as a fresh deployment does; a test
that needs them asks for `built_names`, as the worker's job would have built them."""

import pytest

from recommend import nearest_names
from search import services
from search.models import Paper
from tests.conftest import TEST_EMBEDDER


@pytest.fixture(autouse=True)
def cold_name_cache(tmp_path, monkeypatch):
    directory = tmp_path / "nearest-names"
    monkeypatch.setattr(nearest_names, "CACHE_DIR", directory)
    nearest_names.forget_loaded()
    yield directory
    nearest_names.forget_loaded()


@pytest.fixture
def built_names(cold_name_cache):
    return nearest_names.build("task", TEST_EMBEDDER)


@pytest.fixture
def corpus(fixtures_dir):
    """The fixture papers (an arXiv day and the own-schema file) embedded in every configured
    space, as the workers would have; returns the spaces. (test_api / test_lexical need other
    set-ups and define their own.)"""
    for name in ("arxiv-daily-2025-04-01.jsonl", "own-schema.jsonl"):
        services.papers_ingest_file(path=fixtures_dir / name)
    return _embedded()


@pytest.fixture
def day_corpus(fixtures_dir):
    """One arXiv day (40 papers) embedded in every configured space."""
    services.papers_ingest_file(path=fixtures_dir / "arxiv-daily-2025-04-01.jsonl")
    return _embedded()


def _embedded():
    spaces = services.configured_spaces()
    services.papers_embed(paper_ids=list(Paper.objects.values_list("pk", flat=True)), spaces=spaces)
    return spaces
