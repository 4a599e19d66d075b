import pytest

from search import services
from search.models import Paper


@pytest.fixture
def embedded(fixtures_dir):
    services.papers_ingest_file(path=fixtures_dir / "arxiv-daily-2025-04-01.jsonl")
    space = services.space_for_model()
    services.papers_embed(paper_ids=list(Paper.objects.values_list("pk", flat=True)), space=space)
    return space
