"""Embedding spaces (search.services.spaces): created on first use, switched on when complete."""

import pytest

from search import services
from tests.factories import PaperFactory

pytestmark = pytest.mark.django_db


def test_the_first_space_of_an_aspect_is_active_and_gets_hnsw_indexes():
    from django.db import connection

    space = services.space_for_model()

    assert space.is_active and space.dimension == 256
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE %s",
                       [f"emb_s{space.pk}_%"])
        names = sorted(r[0] for r in cursor.fetchall())
        assert names == [f"emb_s{space.pk}_bit_hnsw", f"emb_s{space.pk}_float_hnsw",
                         f"emb_s{space.pk}_half_hnsw"]
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = %s",
                       [f"emb_s{space.pk}_half_hnsw"])
        options = cursor.fetchone()[0]
    assert options == ["m=12"]  # the measured graph degree for halfvec (HNSW_HALFVEC_M)


def test_an_aspect_space_gets_only_the_graphs_of_its_configured_precisions(settings):
    from django.db import connection

    def graphs(space):
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE %s",
                           [f"emb_s{space.pk}_%"])
            return sorted(r[0] for r in cursor.fetchall())

    task = services.space_for_model(aspect="task")
    settings.ASPECT_INDEX_PRECISIONS = ["halfvec", "binary"]
    dataset = services.space_for_model(aspect="dataset")

    assert graphs(task) == [f"emb_s{task.pk}_half_hnsw"]
    assert graphs(dataset) == [f"emb_s{dataset.pk}_bit_hnsw", f"emb_s{dataset.pk}_half_hnsw"]


def test_a_new_model_space_is_switched_on_only_when_complete(settings):
    papers = PaperFactory.create_batch(3)
    old = services.space_for_model()
    services.papers_embed(paper_ids=[p.pk for p in papers], space=old)
    settings.EMBEDDING_MODEL = "hash:32"
    new = services.space_for_model()
    assert not new.is_active

    services.papers_embed(paper_ids=[papers[0].pk], space=new)
    assert services.space_activate_when_complete() is None

    services.papers_embed(paper_ids=[p.pk for p in papers], space=new)
    assert services.space_activate_when_complete().pk == new.pk
    old.refresh_from_db()
    assert not old.is_active
