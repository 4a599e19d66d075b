"""One ranking, however it is asked for (recommend.ordering): "similar" and "recommend" give
the same order for the same inputs, both rank a given candidate list, both page with offset,
and RERANK_SHORTLIST = 0 turns the rerank off."""

import pytest
from rest_framework.test import APIClient

from search.models import Paper

pytestmark = pytest.mark.django_db


def similar(pk, **params):
    response = APIClient().get(f"/api/v1/papers/{pk}/similar", params)
    assert response.status_code == 200, response.content
    return [r["id"] for r in response.json()["results"]]


def recommend(payload):
    response = APIClient().post("/api/v1/recommend", payload, format="json")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.parametrize("aspect", ["generic", "task", "method", "background"])
def test_similar_and_recommend_with_one_positive_give_the_same_order(corpus, aspect):
    paper = Paper.objects.get(arxiv_id="2503.22880")

    by_similar = similar(paper.pk, aspect=aspect, k=20)
    by_recommend = [r["id"] for r in recommend(
        {"positive": [paper.pk], "aspects": {aspect: 1.0}, "k": 20})["results"]]

    assert by_similar == by_recommend and len(by_similar) == 20


def test_similar_with_candidates_ranks_them_as_recommend_does_with_the_word_rerank(corpus):
    paper = Paper.objects.get(arxiv_id="2503.22880")
    candidates = list(Paper.objects.exclude(pk=paper.pk).order_by("pk").values_list("pk", flat=True)[:15])

    by_similar = similar(paper.pk, aspect="generic", k=15, candidates=",".join(map(str, candidates)))
    body = recommend({"positive": [paper.pk], "candidates": candidates, "k": 15})
    by_recommend = [r["id"] for r in body["results"]]

    assert by_similar == by_recommend
    assert sorted(by_similar) == sorted(candidates)


def test_recommend_with_candidates_applies_the_rerank_similar_applies(corpus, settings):
    paper = Paper.objects.get(arxiv_id="2503.22880")
    candidates = list(Paper.objects.exclude(pk=paper.pk).values_list("pk", flat=True))
    payload = {"positive": [paper.pk], "candidates": candidates, "aspects": {"task": 1.0}, "k": 20}

    given = [r["id"] for r in recommend(payload)["results"]]
    searched = similar(paper.pk, aspect="task", k=20)
    settings.RERANK_SHORTLIST = 0
    vector_only = [r["id"] for r in recommend(payload)["results"]]

    assert given == searched != vector_only


def test_offset_pages_through_one_ranking(corpus):
    paper = Paper.objects.get(arxiv_id="2503.22880")

    whole = similar(paper.pk, aspect="task", k=30)
    pages = similar(paper.pk, aspect="task", k=10) + similar(paper.pk, aspect="task", k=10, offset=10) \
        + similar(paper.pk, aspect="task", k=10, offset=20)
    from_recommend = [r["id"] for r in recommend(
        {"positive": [paper.pk], "aspects": {"task": 1.0}, "k": 10, "offset": 10})["results"]]

    assert pages == whole and from_recommend == whole[10:20]


def test_paging_past_100(corpus, settings):
    settings.RERANK_SHORTLIST = 5  # the small corpus' stand-in for "past the shortlist"
    paper = Paper.objects.get(arxiv_id="2503.22880")
    others = Paper.objects.count() - 1

    whole = similar(paper.pk, k=others)
    tail = similar(paper.pk, k=10, offset=others - 3)

    assert tail == whole[-3:]


@pytest.mark.parametrize("params", [{"offset": "-1"}, {"offset": "x"}, {"offset": "100000"}])
def test_a_bad_offset_is_a_400(corpus, params):
    paper = Paper.objects.first()
    assert APIClient().get(f"/api/v1/papers/{paper.pk}/similar", params).status_code == 400
    assert APIClient().post("/api/v1/recommend", {"positive": [paper.pk], **params},
                            format="json").status_code == 400


def test_rerank_shortlist_0_serves_the_vector_order(corpus, settings):
    paper = Paper.objects.get(arxiv_id="2503.22880")
    reranked = recommend({"positive": [paper.pk], "aspects": {"task": 1.0}, "k": 20})

    settings.RERANK_SHORTLIST = 0
    plain = recommend({"positive": [paper.pk], "aspects": {"task": 1.0}, "k": 20})

    scores = [r["score"] for r in plain["results"]]
    assert scores == sorted(scores, reverse=True)  # nothing reordered, not even the top k
    assert [r["score"] for r in reranked["results"]] != sorted(
        [r["score"] for r in reranked["results"]], reverse=True)  # the rerank does reorder
    assert all("words" not in r["explanation"] for r in plain["results"])
