"""The rerank of "similar by aspect" by shared words and named concepts: fitted vocabulary,
concept counts, fused order against an oracle, explanation."""

import numpy as np
import pytest
from rest_framework.test import APIClient

from recommend import lexical, tasks
from recommend.models import LexicalModel
from search import concepts, services
from search.models import Paper
from search.selectors import stored_vectors

pytestmark = pytest.mark.django_db


@pytest.fixture
def corpus(fixtures_dir, monkeypatch):
    services.papers_ingest_file(path=fixtures_dir / "arxiv-daily-2025-04-01.jsonl")
    services.papers_ingest_file(path=fixtures_dir / "own-schema.jsonl")
    spaces = services.configured_spaces()
    services.papers_embed(paper_ids=list(Paper.objects.values_list("pk", flat=True)),
                          spaces=spaces)
    monkeypatch.setattr(lexical, "FIT_MIN", 10)  # the fixture corpus is small
    return {s.aspect: s for s in spaces}


def similar(paper, aspect, k=5):
    return APIClient().get(f"/api/v1/papers/{paper.pk}/similar", {"aspect": aspect, "k": k}).json()


def test_the_periodic_job_fits_once_and_again_when_the_corpus_doubles(corpus, monkeypatch):
    monkeypatch.setattr(lexical, "FIT_MIN", 10_000)
    assert tasks.fit_lexical_if_needed() is None and not LexicalModel.objects.exists()

    monkeypatch.setattr(lexical, "FIT_MIN", 10)
    version = tasks.fit_lexical_if_needed()
    model = LexicalModel.objects.get()
    assert model.version == version and model.corpus == Paper.objects.count()
    assert "super resolution" in model.terms  # bigrams, as the peer's features
    assert tasks.fit_lexical_if_needed() is None  # the corpus has not doubled


def z(v):
    return (v - v.mean()) / v.std()


def test_similar_reranks_the_vector_shortlist_by_shared_words(corpus, settings):
    settings.RERANK_WEIGHTS = {**settings.RERANK_WEIGHTS, "task": {"words": 1.0, "concepts": 0.0}}
    lexical.fit_model()
    paper = Paper.objects.filter(tasks__contains=["Image_Super-Resolution"]).first()
    space = corpus["task"]

    body = similar(paper, "task", k=5)

    got = [r["id"] for r in body["results"]]
    # the oracle: every other paper, z(vector cosine) + w * z(tf-idf cosine) over the
    # shortlist (here the whole corpus: it is smaller than the shortlist)
    others = list(Paper.objects.exclude(pk=paper.pk).values_list("pk", "title", "abstract"))
    vectors = stored_vectors(space, [paper.pk] + [pid for pid, _, _ in others])
    cos = np.array([float(vectors[paper.pk] @ vectors[pid]) for pid, _, _ in others])
    fitted = lexical.current()
    matrix = fitted.vectorizer.transform(
        [lexical.paper_text(paper.title, paper.abstract)]
        + [lexical.paper_text(t, a) for _, t, a in others])
    words = (matrix[1:] @ matrix[0].T).toarray().ravel()
    fused = z(cos) + 1.0 * z(words)
    expected = [others[i][0] for i in np.argsort(-fused, kind="stable")[:5]]
    assert got == expected
    vector_only = [others[i][0] for i in np.argsort(-cos, kind="stable")[:5]]
    assert got != vector_only  # the words changed something on this corpus

    words_of_first = body["results"][0]["explanation"]["words"]
    assert words_of_first["shared"] and 0 < words_of_first["similarity"] <= 1
    first = Paper.objects.get(pk=got[0])
    text = (first.title + " " + first.abstract).lower()
    assert all(term.split()[0] in text for term in words_of_first["shared"])


def test_similar_reranks_by_shared_task_names_weighted_by_rarity(corpus, settings):
    w = 4.0
    settings.RERANK_WEIGHTS = {**settings.RERANK_WEIGHTS,
                               "task": {"words": 0.0, "concepts": w, "kinds": ("task",)}}
    services.concept_stats_fit()
    paper = Paper.objects.get(title__startswith="Full-Resolution Residual Networks")

    body = similar(paper, "task", k=5)

    # the oracle: idf-weighted cosine of the task names, z-fused with the vector cosine
    others = list(Paper.objects.exclude(pk=paper.pk).values_list("pk", "concepts"))
    vectors = stored_vectors(corpus["task"], [paper.pk] + [pid for pid, _ in others])
    cos = np.array([float(vectors[paper.pk] @ vectors[pid]) for pid, _ in others])
    n = Paper.objects.count()
    df = lambda c: Paper.objects.filter(concepts__contains=[c]).count()  # noqa: E731

    def vec(found):
        v = {c: concepts.idf(df(c), n) for c in found if c.startswith("task:")}
        norm = np.sqrt(sum(x * x for x in v.values())) or 1.0
        return {c: x / norm for c, x in v.items()}

    mine = vec(paper.concepts)
    shared = np.array([sum(x * vec(found).get(c, 0) for c, x in mine.items()) for _, found in others])
    fused = z(cos) + w * shared
    expected = [others[i][0] for i in np.lexsort((np.array([p for p, _ in others]), -fused))[:5]]
    got = [r["id"] for r in body["results"]]
    assert got == expected
    assert got != [others[i][0] for i in np.argsort(-cos, kind="stable")[:5]]
    first = body["results"][0]["explanation"]
    # U-Net and V-Net share "Image Segmentation" with it; the explanation says so
    assert first["shared_concepts"]["task"]
    assert set(first["shared_concepts"]["task"]) <= {concepts.name_of(c) for c in paper.concepts}


def test_without_a_fit_or_concepts_similar_is_the_vector_ranking(corpus, settings):
    settings.RERANK_WEIGHTS = {**settings.RERANK_WEIGHTS, "task": {"words": 1.0, "concepts": 0.0}}
    paper = Paper.objects.filter(tasks__contains=["Image_Super-Resolution"]).first()
    body = similar(paper, "task", k=5)
    assert all("words" not in r["explanation"] for r in body["results"])
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
