import pytest
from rest_framework.test import APIClient

from search import services
from search.models import Paper, PaperEmbedding

pytestmark = pytest.mark.django_db


@pytest.fixture
def corpus(fixtures_dir):
    services.papers_ingest_file(path=fixtures_dir / "arxiv-daily-2025-04-01.jsonl")
    services.papers_ingest_file(path=fixtures_dir / "own-schema.jsonl")
    spaces = services.configured_spaces()
    services.papers_embed(paper_ids=list(Paper.objects.values_list("pk", flat=True)),
                          spaces=spaces)
    return spaces


def post(payload):
    return APIClient().post("/api/v1/recommend", payload, format="json")


def test_every_paper_gets_aspect_vectors_with_evidence_labelled_or_not(corpus):
    labelled = Paper.objects.filter(tasks__contains=["Image_Super-Resolution"]).first()
    unlabelled = Paper.objects.get(arxiv_id="2503.22880")
    assert not unlabelled.tasks

    for paper in (labelled, unlabelled):
        rows = {e.space.aspect: e for e in PaperEmbedding.objects.filter(paper=paper)}
        assert set(rows) == {"generic", "task", "method", "dataset"}
        for aspect in ("task", "method", "dataset"):
            assert rows[aspect].evidence, aspect
            assert all(sentence in paper.abstract for sentence in rows[aspect].evidence)
        assert rows["generic"].evidence == []


def test_similar_by_method_explains_scores_labels_and_sentences(corpus):
    paper = Paper.objects.filter(tasks__contains=["Image_Super-Resolution"]).first()

    body = APIClient().get(f"/api/v1/papers/{paper.pk}/similar",
                           {"aspect": "method", "k": 5}).json()

    assert body["aspect"] == "method" and len(body["results"]) == 5
    explanation = body["results"][0]["explanation"]
    assert set(explanation["similarity"]) == {"generic", "task", "method", "dataset"}
    assert explanation["sentences"]["method"]["result"]
    assert explanation["sentences"]["method"]["query"]
    sr_ids = set(Paper.objects.filter(tasks__contains=["Image_Super-Resolution"])
                 .values_list("pk", flat=True))
    shared = [r for r in body["results"] if r["id"] in sr_ids]
    assert shared and all("Image_Super-Resolution" in r["explanation"]["shared_labels"]["task"]
                          for r in shared)


def test_a_negative_example_demotes_its_neighbours(corpus):
    positive = Paper.objects.get(arxiv_id="2503.22880")
    plain = post({"positive": [positive.pk], "k": 10}).json()["results"]
    negative_id = plain[0]["id"]  # the paper most like the positive...
    neighbour_of_negative = APIClient().get(
        f"/api/v1/papers/{negative_id}/similar", {"k": 1}).json()["results"][0]["id"]

    demoted = post({"positive": [positive.pk], "negative": [negative_id], "k": 10}).json()["results"]

    ids = [r["id"] for r in demoted]
    assert negative_id not in ids
    before = [r["id"] for r in plain].index(neighbour_of_negative) \
        if neighbour_of_negative in [r["id"] for r in plain] else 99
    after = ids.index(neighbour_of_negative) if neighbour_of_negative in ids else 99
    assert after > before or after == 99


def test_recommend_reranks_a_given_candidate_list_within_filters(corpus):
    positive = Paper.objects.get(arxiv_id="2503.22880")
    candidates = list(Paper.objects.exclude(pk=positive.pk).values_list("pk", flat=True)[:6])

    body = post({"positive": [positive.pk], "candidates": candidates,
                 "aspects": {"task": 1.0, "generic": 0.5}, "k": 10}).json()

    assert sorted(r["id"] for r in body["results"]) == sorted(candidates)
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("payload, field", [
    ({"positive": [999999]}, "papers"),
    ({"positive": []}, "positive"),
    ({"positive": [1], "aspects": {"colour": 1.0}}, "aspects"),
    ({"positive": [1], "aspects": {"method": 0}}, "aspects"),
    ({"positive": [1], "filters": {"published_after": "soon"}}, "filters"),
    ({"positive": [1], "filters": {"shape": "round"}}, "filters"),
    ({"positive": [1], "k": 1000}, "k"),
])
def test_bad_recommend_input_is_a_400_naming_the_problem(corpus, payload, field):
    if payload["positive"] == [1]:
        payload = {**payload, "positive": [Paper.objects.first().pk]}

    response = post(payload)

    assert response.status_code == 400
    body = response.json()
    assert field in body or field in body.get("errors", {})


def test_an_unknown_aspect_on_similar_is_a_400(corpus):
    paper = Paper.objects.first()

    response = APIClient().get(f"/api/v1/papers/{paper.pk}/similar", {"aspect": "colour"})

    assert response.status_code == 400 and "aspect" in response.json()["errors"]


def test_the_paper_page_has_aspect_tabs_and_the_recommend_page_renders(client, corpus):
    paper = Paper.objects.get(arxiv_id="2503.22880")

    tab = client.get(f"/papers/{paper.pk}/", {"aspect": "method"}, HTTP_HX_REQUEST="true")
    page = client.get("/recommend/", {"positive": [paper.pk], "w_method": "1"})

    assert "Why:" in tab.content.decode() and "<html" not in tab.content.decode()
    assert page.status_code == 200 and "More like these" in page.content.decode()
    assert page.content.decode().count('class="result"') == 20


def test_the_labels_page_lists_labels_with_counts(client, corpus):
    html = client.get("/labels/").content.decode()

    assert "Image_Super-Resolution" in html
