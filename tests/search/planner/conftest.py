import pytest

from search import services
from search.models import Paper


@pytest.fixture
def corpus(fixtures_dir):
    for name in ("arxiv-daily-2025-04-01.jsonl", "kaggle-sample.json", "own-schema.jsonl"):
        services.papers_ingest_file(path=fixtures_dir / name)
    space = services.space_for_model()
    services.papers_embed(paper_ids=list(Paper.objects.values_list("pk", flat=True)), space=space)
    return space
