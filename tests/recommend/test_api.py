"""GET /api/v1/papers/{id}/similar and POST /api/v1/recommend (recommend.api)."""

import pytest
from rest_framework.test import APIClient

from search import services
from search.models import Paper

pytestmark = pytest.mark.django_db


@pytest.fixture
def client():
    return APIClient()


@pytest.fixture
def corpus(fixtures_dir):
    services.papers_ingest_file(path=fixtures_dir / "arxiv-daily-2025-04-01.jsonl")
    services.papers_ingest_file(path=fixtures_dir / "own-schema.jsonl")
    space = services.space_for_model()
    services.papers_embed(paper_ids=list(Paper.objects.values_list("pk", flat=True)), space=space)
    return Paper.objects.all()


def test_similar_excludes_the_paper_itself_and_validates_input(client, corpus):
    paper = Paper.objects.get(arxiv_id="2503.22698")

    body = client.get(f"/api/v1/papers/{paper.pk}/similar", {"k": 5}).json()
    bad_aspect = client.get(f"/api/v1/papers/{paper.pk}/similar", {"aspect": "colour"})

    assert len(body["results"]) == 5 and paper.pk not in [r["id"] for r in body["results"]]
    assert body["aspect"] == "generic"
    assert bad_aspect.status_code == 400 and "aspect" in bad_aspect.json()["errors"]
    assert client.get("/api/v1/papers/999999/similar").status_code == 404


def test_similar_for_a_paper_not_yet_embedded_is_a_409(client, corpus, tmp_path):
    path = tmp_path / "new.jsonl"
    path.write_text('{"arxiv_id": "2502.00001", "title": "Fresh", "abstract": "Just in."}\n')
    services.papers_ingest_file(path=path)
    fresh = Paper.objects.get(arxiv_id="2502.00001")

    response = client.get(f"/api/v1/papers/{fresh.pk}/similar")

    assert response.status_code == 409 and "not been computed" in response.json()["detail"]


def test_similar_refuses_unknown_parameters_and_bad_filters(client, corpus):
    paper = Paper.objects.first()

    response = client.get(f"/api/v1/papers/{paper.pk}/similar",
                          {"colour": "red", "published_after": "soon", "k": "x"})

    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == "invalid parameters"
    assert set(body["errors"]) == {"unknown", "published_after", "k"}


def test_a_non_numeric_id_is_a_400_not_a_500(client, corpus):
    for payload in ({"positive": ["²"]}, {"positive": [corpus.first().pk], "negative": ["²"]},
                    {"positive": [corpus.first().pk], "candidates": ["1e3"]}):
        response = client.post("/api/v1/recommend", payload, format="json")
        assert response.status_code == 400, payload
        assert response.json()["detail"] == "invalid parameters"


def test_an_unknown_paper_is_named_in_the_same_error_shape(client, corpus):
    response = client.post("/api/v1/recommend", {"positive": [999999]}, format="json")

    assert response.status_code == 400
    assert response.json() == {"detail": "invalid parameters",
                               "errors": {"papers": "unknown paper id(s): 999999"}}


def test_a_body_that_is_not_an_object_is_a_400(client, db):
    response = client.post("/api/v1/recommend", [1, 2], format="json")
    assert response.status_code == 400 and "body" in response.json()["errors"]


def test_the_schema_describes_the_recommend_request(client, db):
    schema = client.get("/api/schema/", {"format": "json"}).json()

    body = schema["paths"]["/api/v1/recommend"]["post"]["requestBody"]["content"]["application/json"]
    fields = schema["components"]["schemas"][body["schema"]["$ref"].rsplit("/", 1)[1]]
    assert set(fields["properties"]) == {"positive", "negative", "aspects", "filters", "k",
                                         "offset", "candidates"}
    assert fields["required"] == ["positive"]
    assert fields["properties"]["k"]["maximum"] == 100
    assert fields["properties"]["aspects"]["additionalProperties"]["maximum"] == 100
    similar = schema["paths"]["/api/v1/papers/{id}/similar"]["get"]["parameters"]
    assert {"aspect", "k", "published_after", "category"} <= {p["name"] for p in similar}


def test_status_says_what_a_fresh_instance_is_still_preparing(db):
    from rest_framework.test import APIClient

    body = APIClient().get("/api/v1/status").json()

    assert isinstance(body["preparing"], list)
    assert any("task names" in item for item in body["preparing"])  # nothing built in a test db
