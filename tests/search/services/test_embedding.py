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


def test_the_copies_are_the_exact_casts_of_the_stored_vector_in_every_space():
    papers = PaperFactory.create_batch(3)
    spaces = services.configured_spaces()

    assert services.papers_embed(paper_ids=[p.pk for p in papers], spaces=spaces) == 3 * len(spaces)

    for row in PaperEmbedding.objects.filter(paper__in=papers):
        vector = np.asarray(row.embedding, dtype=np.float32)
        assert np.array_equal(np.asarray(row.embedding_half, dtype=np.float16),
                              vector.astype(np.float16))
        bits = row.embedding_bit.to_text() if hasattr(row.embedding_bit, "to_text") \
            else str(row.embedding_bit)
        assert bits == "".join("1" if v > 0 else "0" for v in vector)


def queued(queue: str) -> list[tuple[str, list]]:
    """(task name, args) of the messages waiting in a broker queue (the real Redis list)."""
    import base64
    import json

    from project.celery import app

    with app.connection_for_write() as conn:
        raw = conn.default_channel.client.lrange(queue, 0, -1)
    messages = [json.loads(m) for m in reversed(raw)]  # LPUSH: oldest last
    return [(m["headers"]["task"], json.loads(base64.b64decode(m["body"]))[0]) for m in messages]


def test_one_task_per_chunk_carries_every_space_then_the_follow_up_tasks(settings):
    from django.conf import settings as conf

    from project.celery import app

    settings.EMBEDDING_TASK_CHUNK = 2
    settings.EMBEDDING_FOLLOW_UP_TASKS = ["search.tasks.refresh_concepts"]
    spaces = services.configured_spaces()
    with app.connection_for_write() as conn:
        conn.default_channel.client.delete(*conf.CELERY_TASK_QUEUES)

    assert services.queue_embedding(paper_ids=[11, 12, 13], spaces=spaces) == 4

    space_ids = [s.pk for s in spaces]
    assert queued("embed") == [("search.tasks.embed_papers", [[11, 12], space_ids]),
                               ("search.tasks.embed_papers", [[13], space_ids])]
    assert queued("maintenance") == [("search.tasks.refresh_concepts", [[11, 12]]),
                                     ("search.tasks.refresh_concepts", [[13]])]
    with app.connection_for_write() as conn:  # no worker of a later test runs these
        conn.default_channel.client.delete(*conf.CELERY_TASK_QUEUES)
