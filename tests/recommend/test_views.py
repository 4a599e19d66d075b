"""The paper page ("similar by aspect" tabs) and the "more like these" page: recommend's HTML
views, with the API's parsers (errors shown inline) and without encoding anything."""

import pytest
from rest_framework.test import APIClient

from recommend import nearest_names
from search import services
from search.models import Paper
from tests.conftest import TEST_EMBEDDER

pytestmark = pytest.mark.django_db


@pytest.fixture
def corpus(fixtures_dir):
    services.papers_ingest_file(path=fixtures_dir / "arxiv-daily-2025-04-01.jsonl")
    services.papers_embed(paper_ids=list(Paper.objects.values_list("pk", flat=True)))


@pytest.fixture
def aspect_corpus(fixtures_dir):
    services.papers_ingest_file(path=fixtures_dir / "arxiv-daily-2025-04-01.jsonl")
    services.papers_ingest_file(path=fixtures_dir / "own-schema.jsonl")
    services.papers_embed(paper_ids=list(Paper.objects.values_list("pk", flat=True)),
                          spaces=services.configured_spaces())


def test_the_paper_page_lists_similar_papers(client, corpus):
    paper = Paper.objects.get(arxiv_id="2503.22880")

    response = client.get(f"/papers/{paper.pk}/")

    html = response.content.decode()
    assert paper.title in html and "Similar papers" in html
    assert html.count('class="result"') == 10
    assert client.get("/papers/999999/").status_code == 404


def test_the_paper_page_shows_the_names_found_in_the_text(client, corpus):
    paper = Paper.objects.get(arxiv_id="2503.22880")  # the sonar datasets paper
    html = client.get(f"/papers/{paper.pk}/").content.decode()
    assert "Mentions tasks" in html and "?concept=task%3ASemantic%20Segmentation" in html


def test_the_paper_page_takes_the_apis_parameters_and_shows_its_errors_inline(client, corpus):
    paper = Paper.objects.get(arxiv_id="2503.22880")

    five = client.get(f"/papers/{paper.pk}/", {"k": "5"}).content.decode()
    bad = client.get(f"/papers/{paper.pk}/", {"aspect": "colour", "k": "0"})
    api = APIClient().get(f"/api/v1/papers/{paper.pk}/similar", {"aspect": "colour", "k": "0"}).json()

    assert five.count('class="result"') == 5
    html = bad.content.decode()
    assert bad.status_code == 200 and 'class="errors"' in html and 'class="result"' not in html
    for message in api["errors"].values():  # the same words as the API's 400
        assert message.replace("'", "&#x27;") in html


def test_the_recommend_page_reports_a_bad_id_inline_instead_of_failing(client, corpus):
    paper = Paper.objects.first()

    response = client.get(f"/recommend/?positive={paper.pk}&positive=%C2%B2")
    api = APIClient().post("/api/v1/recommend", {"positive": [paper.pk, "²"]}, format="json")

    assert response.status_code == 200 and api.status_code == 400
    message = api.json()["errors"]["positive"]
    assert message.replace("'", "&#x27;") in response.content.decode()
    assert f'name="positive" value="{paper.pk}"' in response.content.decode()  # kept for a retry


def test_the_recommend_page_keeps_its_query_strings(client, aspect_corpus):
    first, second = Paper.objects.order_by("pk")[:2]

    html = client.get(f"/recommend/?positive={first.pk}&positive={second.pk}&w_task=0.5").content.decode()

    assert html.count('class="result"') == 20 and 'class="errors"' not in html
    assert 'name="w_task" min="0" max="1" step="0.1" value="0.5"' in html


def test_the_recommend_page_shows_the_apis_message_for_a_bad_weight(client, corpus):
    paper = Paper.objects.first()

    html = client.get("/recommend/", {"positive": paper.pk, "w_generic": "7e9"}).content.decode()
    api = APIClient().post("/api/v1/recommend", {"positive": [paper.pk], "aspects": {"generic": 7e9}},
                           format="json").json()

    assert api["errors"]["aspects"].replace("'", "&#x27;") in html
    assert 'class="result"' not in html


def test_without_examples_the_recommend_page_says_what_to_do(client, corpus):
    html = client.get("/recommend/").content.decode()
    assert "Pick papers first" in html and 'class="errors"' not in html


def test_with_the_names_not_built_a_page_answers_without_encoding_them(
        client, aspect_corpus, cold_name_cache, monkeypatch):
    class Refuses:  # the test encoder's name, but no encoding
        name, version = TEST_EMBEDDER, "1"

        def encode(self, texts, **_):
            raise AssertionError("a request encoded the names")

    monkeypatch.setattr(nearest_names, "get_encoder", lambda name: Refuses())
    monkeypatch.setattr(nearest_names, "NEAREST_FLOOR", 0.0)  # any name would be "near"
    paper = Paper.objects.get(arxiv_id="2503.22880")
    pair = Paper.objects.exclude(pk=paper.pk).order_by("pk").first()

    tab = client.get(f"/papers/{paper.pk}/", {"aspect": "task"}, HTTP_HX_REQUEST="true")
    similar = APIClient().get(f"/api/v1/papers/{paper.pk}/similar", {"aspect": "task"})
    more = APIClient().post("/api/v1/recommend", {"positive": [paper.pk], "negative": [pair.pk],
                                                  "aspects": {"task": 1.0}}, format="json")

    assert tab.status_code == similar.status_code == more.status_code == 200
    assert 'class="result"' in tab.content.decode() and 'class="chip about"' not in tab.content.decode()
    assert similar.json()["results"] and more.json()["results"]
    assert all(r["explanation"]["both_about"] == {} for r in similar.json()["results"] + more.json()["results"])
    assert not cold_name_cache.exists()  # nothing was built on the way
