"""The rerank of "similar by aspect" by shared words and named concepts: fitted vocabulary,
concept counts, fused order against an oracle, explanation."""

import numpy as np
import pytest
from rest_framework.test import APIClient

from recommend import lexical, nearest_names, tasks
from recommend.models import LexicalModel
from search import concepts, services
from search.embedders import get_encoder, paper_text
from search.models import Paper
from search.selectors import concept_weights, stored_vectors

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
        [paper_text(paper.title, paper.abstract)]
        + [paper_text(t, a) for _, t, a in others])
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


def test_similar_adds_the_names_nearest_both_papers_to_the_names_they_share(corpus, settings, monkeypatch):
    w, near = 2.0, 4.0
    settings.RERANK_WEIGHTS = {**settings.RERANK_WEIGHTS,
                               "task": {"words": 0.0, "concepts": w, "kinds": ("task",), "nearest": near}}
    # hash vectors sit far from any name and rarely share a nearest one: a wider, lower net
    monkeypatch.setattr(nearest_names, "NEAREST_FLOOR", 0.0)
    monkeypatch.setattr(nearest_names, "NEAREST_TOP", 50)
    services.concept_stats_fit()
    paper = Paper.objects.get(title__startswith="Full-Resolution Residual Networks")

    # the oracle: z(task cosine) + w * (shared task names + near * cosine of the 50 task names
    # whose embedding (the test encoder's) is nearest each paper's generic vector)
    others = list(Paper.objects.exclude(pk=paper.pk).values_list("pk", "concepts"))
    ids = [paper.pk] + [pid for pid, _ in others]
    task, generic = stored_vectors(corpus["task"], ids), stored_vectors(corpus["generic"], ids)
    cos = np.array([float(task[paper.pk] @ task[pid]) for pid in ids[1:]])
    dictionary = concepts.shipped_dictionary()
    names = sorted({c for t in (dictionary.exact, dictionary.folded) for found in t.values() for c in found
                    if c.startswith("task:")})
    E = get_encoder(corpus["generic"].model_name).encode([concepts.name_of(c) for c in names])
    # hash vectors of short names tie often; a little noise makes "the 50 nearest" one answer
    E = E + np.random.default_rng(0).normal(0, 1e-3, E.shape)
    E = (E / np.linalg.norm(E, axis=1, keepdims=True)).astype(np.float32)
    monkeypatch.setattr(nearest_names, "name_vectors", lambda kind, model: (names, E))

    def nearest(pid):
        s = E.astype(np.float64) @ generic[pid]
        top = np.argsort(-s)[:50]
        v = np.zeros(len(names))
        v[top] = np.maximum(s[top], 0)
        return v / np.linalg.norm(v)

    body = similar(paper, "task", k=5)
    got = [r["id"] for r in body["results"]]
    nearest_cos = np.array([float(nearest(paper.pk) @ nearest(pid)) for pid in ids[1:]])
    assert nearest_cos.std() > 0.02  # the term has something to say on this corpus
    idf = concept_weights().idf
    mine = concepts.weighted(paper.concepts, idf, ("task",))
    shared = np.array([concepts.cosine(mine, concepts.weighted(found, idf, ("task",))) for _, found in others])
    fused = z(cos) + w * (shared + near * nearest_cos)
    expected = [others[i][0] for i in np.lexsort((np.array(ids[1:]), -fused))[:5]]
    assert got == expected
    without = z(cos) + w * shared
    assert got != [others[i][0] for i in np.lexsort((np.array(ids[1:]), -without))[:5]]

    # each result says which of the query's nearest task names are nearest it too (3 at most)
    def named(pid):
        row = nearest(pid)
        return [concepts.name_of(names[i]) for i in np.argsort(-row) if row[i] > 0]

    for result in body["results"]:
        theirs = set(named(result["id"]))
        both = [name for name in named(paper.pk) if name in theirs][:3]
        assert result["explanation"].get("both_about", {}).get("task", []) == both
    assert any(r["explanation"].get("both_about") for r in body["results"])


def test_a_paper_that_names_no_task_is_ranked_by_its_nearest_names(corpus, built_names, settings):
    # found names all zero: the nearest names alone move the order (was a numpy casting error)
    settings.RERANK_WEIGHTS = {**settings.RERANK_WEIGHTS,
                               "task": {"words": 0.0, "concepts": 4.0, "kinds": ("task",), "nearest": 1.0}}
    paper = Paper.objects.filter(concepts=[]).first()
    response = APIClient().get(f"/api/v1/papers/{paper.pk}/similar", {"aspect": "task", "k": 5})
    assert response.status_code == 200
    assert len(response.json()["results"]) == 5


def test_without_a_fit_or_concepts_similar_is_the_vector_ranking(corpus, settings):
    settings.RERANK_WEIGHTS = {**settings.RERANK_WEIGHTS, "task": {"words": 1.0, "concepts": 0.0}}
    paper = Paper.objects.filter(tasks__contains=["Image_Super-Resolution"]).first()
    body = similar(paper, "task", k=5)
    assert all("words" not in r["explanation"] for r in body["results"])
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
