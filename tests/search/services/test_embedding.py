"""Vector writes (search.services.embedding): the float vector with its quantized copies,
skipping what is current."""

import numpy as np
import pytest

from search import services
from search.embedders import get_encoder, paper_text
from search.models import PaperEmbedding
from tests.factories import PaperFactory

pytestmark = pytest.mark.django_db


def stored(paper, space):
    return PaperEmbedding.objects.get(paper=paper, space=space)


def test_it_stores_the_full_vector_with_half_and_binary_copies():
    paper = PaperFactory()
    space = services.space_for_model()

    assert services.papers_embed(paper_ids=[paper.pk], space=space) == 1

    row = stored(paper, space)
    expected = get_encoder().encode([paper_text(paper.title, paper.abstract)])[0]
    assert np.allclose(np.asarray(row.embedding), expected, atol=1e-6)
    assert np.allclose(np.asarray(row.embedding_half, dtype=np.float32), expected, atol=1e-3)
    bits = np.array([c == "1" for c in row.embedding_bit.to_text()]) \
        if hasattr(row.embedding_bit, "to_text") else np.array([c == "1" for c in row.embedding_bit])
    assert (bits == (expected > 0)).all()
    assert row.content_hash == paper.content_hash


def test_it_skips_a_paper_whose_vector_is_current():
    paper = PaperFactory()
    space = services.space_for_model()
    services.papers_embed(paper_ids=[paper.pk], space=space)
    first = stored(paper, space).computed_at

    assert services.papers_embed(paper_ids=[paper.pk], space=space) == 0
    assert stored(paper, space).computed_at == first


def test_changed_text_recomputes_the_vector_and_its_quantized_copies(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"arxiv_id": "2501.00009", "title": "Graph networks", '
                    '"abstract": "We study message passing on molecules."}\n')
    services.papers_ingest_file(path=path)
    from search.models import Paper

    paper = Paper.objects.get(arxiv_id="2501.00009")
    space = services.space_for_model()
    services.papers_embed(paper_ids=[paper.pk], space=space)
    old_half = np.asarray(stored(paper, space).embedding_half, dtype=np.float32)

    path.write_text('{"arxiv_id": "2501.00009", "title": "Graph networks", '
                    '"abstract": "A survey of transformers for speech recognition."}\n')
    services.papers_ingest_file(path=path)
    paper.refresh_from_db()
    assert services.papers_missing_embedding_ids(space=space) == [paper.pk]
    services.papers_embed(paper_ids=[paper.pk], space=space)

    row = stored(paper, space)
    assert row.content_hash == paper.content_hash
    assert not np.allclose(np.asarray(row.embedding_half, dtype=np.float32), old_half)
    assert np.allclose(np.asarray(row.embedding_half, dtype=np.float32),
                       np.asarray(row.embedding), atol=1e-3)
    assert services.papers_missing_embedding_ids(space=space) == []


def test_deleted_papers_are_ignored():
    paper = PaperFactory()
    pk = paper.pk
    paper.delete()

    assert services.papers_embed(paper_ids=[pk]) == 0
