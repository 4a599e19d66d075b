"""Abstract sentences, their roles and vectors, and the facet FDEs (search.services.sentences,
search.sentence_selectors) on the real Postgres + pgvector, through the service and through a
real Celery worker. The hash encoder stands in for MiniLM (roles by the cue-phrase baseline)."""

import numpy as np
import pytest
from django.db import connection

from search import services
from search.embedders import content_hash, get_encoder
from search.models import Paper, PaperFacetVector, PaperSentences
from search.multivector import maxsim
from search.params import SearchFilters
from search.roles import FACETS, ROLE_LABELS
from search.sentence_selectors import PaperSentenceSet, facet_candidates, paper_sentences
from search.sentence_tasks import sentences_missing
from search.sentences import split_sentences
from search.services.sentences import papers_embed_sentences, papers_missing_sentences_ids
from tests.conftest import wait_for
from tests.factories import PaperFactory


@pytest.fixture
def corpus(fixtures_dir, db):
    services.papers_ingest_file(path=fixtures_dir / "arxiv-daily-2025-04-01.jsonl")
    services.space_for_model()  # the generic space: active, so sentences are read from it
    ids = list(Paper.objects.order_by("pk").values_list("pk", flat=True))
    assert papers_embed_sentences(paper_ids=ids) == len(ids) == 40
    return ids


def test_each_paper_stores_its_sentences_roles_vectors_and_three_fdes(corpus):
    paper = Paper.objects.get(pk=corpus[0])
    sets = paper_sentences(corpus)
    assert set(sets) == set(corpus)
    mine = sets[paper.pk]
    assert mine.texts == split_sentences(paper.abstract)
    assert len(mine.roles) == len(mine.texts) and set(mine.roles) <= set(ROLE_LABELS)
    # int8 storage decodes to the encoder's vectors (cosine ~1)
    exact = get_encoder().encode(mine.texts)
    assert mine.vectors.shape == exact.shape
    assert np.min(np.sum(mine.vectors * exact, axis=1)) > 0.99
    assert PaperFacetVector.objects.filter(paper=paper).count() == len(FACETS)
    # done is done: a second pass writes nothing
    assert papers_embed_sentences(paper_ids=corpus) == 0
    assert papers_missing_sentences_ids() == []


def test_an_edited_abstract_makes_the_sentences_stale_until_rewritten(corpus):
    paper = Paper.objects.get(pk=corpus[3])
    new_abstract = "We study tiny robots. We propose a new gripper. It lifts ten times its weight."
    Paper.objects.filter(pk=paper.pk).update(
        abstract=new_abstract, content_hash=content_hash(paper.title, new_abstract))
    assert paper.pk not in paper_sentences([paper.pk])  # stale rows are never read
    assert papers_missing_sentences_ids() == [paper.pk]
    assert papers_embed_sentences(paper_ids=corpus) == 1
    assert paper_sentences([paper.pk])[paper.pk].texts == split_sentences(new_abstract)
    assert PaperFacetVector.objects.filter(paper=paper).count() == len(FACETS)


@pytest.mark.parametrize(("abstract", "stored"), [
    ("   ", 1),  # no abstract (the table refuses an empty one): the title stands in
    ("We propose a single sentence method for graph matching.", 1),
    (" ".join(f"Sentence number {i} describes step {i} of the method." for i in range(200)), 48),
])
def test_no_one_and_two_hundred_sentences_work(db, settings, abstract, stored):
    settings.SENTENCES_PER_PAPER = 48
    services.space_for_model()
    paper = PaperFactory(abstract=abstract)
    assert papers_embed_sentences(paper_ids=[paper.pk]) == 1
    found = paper_sentences([paper.pk])[paper.pk]
    assert len(found.texts) == len(found.roles) == found.vectors.shape[0] == stored
    if not abstract.strip():
        assert found.texts == [paper.title]
    for facet in FACETS:  # every facet has rows (the fallback: all sentences)
        assert len(found.facet_rows(facet)) >= 1
        assert facet_candidates(facet, found, k=5) == [paper.pk]


def test_facet_search_returns_the_brute_force_maxsim_top_1(corpus):
    sets = paper_sentences(corpus)
    for qid in corpus[::8]:
        for facet in FACETS:
            # a query made of one paper's facet sentences finds that paper through a walk of
            # only 5 FDE candidates, then the exact rerank
            query = sets[qid]
            assert facet_candidates(facet, query, k=1, rerank=5) == [qid]
            # with the paper excluded, the answer is the brute-force MaxSim best of the rest
            q = query.facet_vectors(facet)
            truth = max((maxsim(q, s.facet_vectors(facet)), -pid) for pid, s in sets.items()
                        if pid != qid)
            assert facet_candidates(facet, query, k=1, exclude_ids=[qid], rerank=40) == [-truth[1]]


def test_facet_candidates_honour_filters_and_never_come_back_short(corpus):
    sets = paper_sentences(corpus)
    query = sets[corpus[0]]
    one_category = Paper.objects.get(pk=corpus[5]).categories[0]
    matching = set(Paper.objects.filter(categories__contains=[one_category])
                   .values_list("pk", flat=True))
    got = facet_candidates("method", query, k=40, rerank=3,
                           filters=SearchFilters(categories=(one_category,)))
    assert set(got) == matching  # more than the walk's 3: ranked exactly over the filtered set
    assert len(facet_candidates("result", query, k=30, rerank=3)) == 30
    with pytest.raises(ValueError):
        facet_candidates("problem-ish", query, k=3)


def test_a_paper_deleted_meanwhile_leaves_nothing_behind(corpus):
    gone = corpus[1]
    Paper.objects.filter(pk=gone).delete()
    assert not PaperSentences.objects.filter(paper_id=gone).exists()
    assert papers_embed_sentences(paper_ids=[gone]) == 0
    assert not PaperFacetVector.objects.filter(paper_id=gone).exists()


def test_the_sentence_set_falls_back_to_all_rows_for_a_missing_facet():
    s = PaperSentenceSet(1, ["a", "b"], ["method", "other"], np.eye(2, dtype=np.float32))
    assert list(s.facet_rows("method")) == [0] and not s.facet_fallback("method")
    assert list(s.facet_rows("result")) == [0, 1] and s.facet_fallback("result")


def test_the_worker_writes_sentences_after_ingest_and_the_sweep_repairs_losses(
        celery_worker, fixtures_dir):
    services.papers_ingest_file(path=fixtures_dir / "kaggle-sample.json")
    wait_for(lambda: PaperSentences.objects.count() == 15, timeout=120, what="sentences written")
    assert PaperFacetVector.objects.count() == 15 * len(FACETS)
    # a worker that died mid-chunk: some papers lost their rows (each is written whole)
    PaperSentences.objects.filter(paper__arxiv_id__in=["0704.0001", "0704.0002"]).delete()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM search_paperfacetvector f USING search_paper p "
                       "WHERE p.id = f.paper_id AND p.arxiv_id = '0704.0001'")
    assert sentences_missing.delay() is not None
    wait_for(lambda: PaperSentences.objects.count() == 15, timeout=120, what="sweep repaired")
    wait_for(lambda: PaperFacetVector.objects.count() == 15 * len(FACETS), timeout=60,
             what="FDEs rewritten")


def test_sentence_vectors_off_queues_no_sentence_work(db, settings, fixtures_dir):
    """SENTENCE_VECTORS=0: neither ingestion nor the sweep queues the sentence wave."""
    from search.services.sentences import queue_sentences

    settings.SENTENCE_VECTORS = False
    services.papers_ingest_file(path=fixtures_dir / "kaggle-sample.json")
    ids = list(Paper.objects.values_list("pk", flat=True))
    assert queue_sentences(paper_ids=ids) == 0
    assert sentences_missing() == 0
    settings.SENTENCE_VECTORS = True
    assert queue_sentences(paper_ids=ids) == 1  # one chunk of 15 papers
