"""Facets (background / method / result, recommend.facets): offered by name, a bad name is a
400, a facet with no confident signal is exactly the generic ranking (the floor), a paper with
no sentences still gets an answer, and, results explain themselves
with the matched sentences of both papers and their roles."""

import pytest
from rest_framework.test import APIClient

from recommend import facets
from search import services
from search.models import Paper

pytestmark = pytest.mark.django_db


def get_similar(pk, **params):
    return APIClient().get(f"/api/v1/papers/{pk}/similar", params)


def test_a_bad_facet_name_is_a_400_that_lists_the_facets(corpus):
    paper = Paper.objects.first()

    response = get_similar(paper.pk, aspect="problems")

    assert response.status_code == 400
    message = response.json()["errors"]["aspect"]
    assert "'problems'" in message and all(f in message for f in facets.FACETS)
    bad = APIClient().post("/api/v1/recommend", {"positive": [paper.pk], "aspects": {"results": 1}},
                           format="json")
    assert bad.status_code == 400 and "result" in bad.json()["errors"]["aspects"]


@pytest.mark.parametrize("facet", facets.FACETS)
def test_a_facet_without_a_confident_signal_is_the_generic_ranking(corpus, settings, facet):
    settings.FACET_WEIGHTS = {f: {"maxsim": 0.0, "aspect": 0.0} for f in facets.FACETS}
    paper = Paper.objects.get(arxiv_id="2503.22880")

    by_facet = get_similar(paper.pk, aspect=facet, k=20).json()
    generic = get_similar(paper.pk, aspect="generic", k=20).json()

    assert by_facet["aspect"] == facet
    assert [r["id"] for r in by_facet["results"]] == [r["id"] for r in generic["results"]]


def test_a_heavily_weighted_borrowed_aspect_orders_the_facet_by_that_space(corpus, settings):
    settings.FACET_WEIGHTS = {"background": {"maxsim": 0.0, "aspect": 1000.0}}
    paper = Paper.objects.get(arxiv_id="2503.22880")

    results = get_similar(paper.pk, aspect="background", k=20).json()["results"]

    by_task = [r["explanation"]["similarity"]["task"] for r in results]
    assert by_task == sorted(by_task, reverse=True)


def test_a_paper_with_no_abstract_sentences_gets_a_generic_floored_answer(corpus, settings):
    settings.FACET_WEIGHTS = {f: {"maxsim": 1.0, "aspect": 0.0} for f in facets.FACETS}
    paper = Paper.objects.create(title="Untitled note", abstract="See the PDF.",
                                 content_hash="no-abstract")
    services.papers_embed(paper_ids=[paper.pk], spaces=services.configured_spaces())

    for facet in facets.FACETS:
        response = get_similar(paper.pk, aspect=facet, k=5)
        assert response.status_code == 200, response.content
        assert len(response.json()["results"]) == 5


def test_the_paper_page_offers_the_facet_tabs(client, corpus):
    paper = Paper.objects.get(arxiv_id="2503.22880")

    html = client.get(f"/papers/{paper.pk}/?aspect=background").content.decode()

    for label in ("same problem", "same method", "same result", "same task", "same dataset"):
        assert label in html
    assert 'aria-current="true"' in html.split("same problem")[0].rsplit("<a", 1)[1]


@pytest.fixture
def sentences(corpus):
    """The corpus' sentences, roles and facet encodings, as the sentence workers store them."""
    from search.services.sentences import papers_embed_sentences

    papers_embed_sentences(paper_ids=list(Paper.objects.values_list("pk", flat=True)))
    return corpus


def test_similar_by_facet_answers_with_the_matched_sentences_of_both_papers(sentences, settings):
    settings.FACET_WEIGHTS = {f: {"maxsim": 1.0, "aspect": 0.0} for f in facets.FACETS}
    paper = Paper.objects.filter(tasks__contains=["Image_Super-Resolution"]).first()

    body = get_similar(paper.pk, aspect="method", k=5).json()

    matched = [r["explanation"]["facets"]["method"] for r in body["results"]
               if "method" in r["explanation"].get("facets", {})]
    assert matched
    for m in matched:
        for pair in m["pairs"]:
            assert pair["query"] in paper.abstract
            assert pair["query_role"] in ("method",) or m["fallback"]["query"]
            assert -1.0 <= pair["cosine"] <= 1.0
