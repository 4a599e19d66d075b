"""With the cache's Redis unreachable, search still answers (uncached)."""

import pytest
from django.core.cache import caches
from django.test import Client

from search import services
from search.models import Paper

pytestmark = pytest.mark.django_db


@pytest.fixture
def unreachable_redis(settings):
    dead = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": dead}}
    settings.REDIS_URL = dead
    from project import throttling

    throttling._client.cache_clear()
    throttling._script.cache_clear()
    caches._settings = None  # rebuild the cache handler from the changed settings
    caches.__init__()
    yield
    throttling._client.cache_clear()
    throttling._script.cache_clear()
    caches.__init__()


def test_search_and_pages_answer_without_redis(fixtures_dir, unreachable_redis):
    services.papers_ingest_file(path=fixtures_dir / "arxiv-daily-2025-04-01.jsonl")
    services.papers_embed(paper_ids=list(Paper.objects.values_list("pk", flat=True)))
    client = Client()

    api = client.get("/api/v1/search?q=marine+debris+sonar&mode=semantic")
    page = client.get("/?q=marine+debris")

    assert api.status_code == 200 and api.json()["count"] > 0
    assert page.status_code == 200
