import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from search import services
from search.models import Job, Paper
from tests.conftest import wait_for

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


def token_client(*, staff: bool) -> APIClient:
    user = User.objects.create_user(f"u{staff}", password="pw-123456", is_staff=staff)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def test_search_returns_k_ranked_results_with_ids_and_scores(client, corpus):
    response = client.get("/api/v1/search", {"q": "sonar images of underwater debris", "k": 5})

    assert response.status_code == 200
    body = response.json()
    assert body["mode"] == "hybrid" and body["count"] == 5
    first = body["results"][0]
    assert {"id", "arxiv_id", "title", "score"} <= set(first)
    assert "debug" not in body  # plans are shown to staff only


@pytest.mark.parametrize("mode", ["semantic", "keyword", "hybrid"])
def test_each_mode_finds_a_paper_by_its_exact_title(client, corpus, mode):
    paper = Paper.objects.get(arxiv_id="2503.22880")

    response = client.get("/api/v1/search", {"q": paper.title, "mode": mode})

    assert response.json()["results"][0]["id"] == paper.pk


@pytest.mark.parametrize("params, field", [
    ({"q": "x", "k": "0"}, "k"),
    ({"q": "x", "k": "100000"}, "k"),
    ({"q": "x", "k": "ten"}, "k"),
    ({"q": "x", "mode": "fuzzy"}, "mode"),
    ({"q": "x", "published_after": "2025-02-30"}, "published_after"),
    ({"q": "x", "colour": "red"}, "unknown"),
    ({"q": "x", "semantic_weight": "2"}, "semantic_weight"),
])
def test_invalid_search_input_is_a_400_naming_the_field(client, corpus, params, field):
    response = client.get("/api/v1/search", params)

    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_filters_apply_to_search(client, corpus):
    response = client.get("/api/v1/search", {"q": "image", "task": "Image_Super-Resolution",
                                             "mode": "semantic"})

    titles = {r["title"] for r in response.json()["results"]}
    expected = set(Paper.objects.filter(tasks__contains=["Image_Super-Resolution"])
                   .values_list("title", flat=True))
    assert titles == expected


def test_paper_detail_and_lookup_by_arxiv_id(client, corpus):
    paper = Paper.objects.get(arxiv_id="2503.22698")

    detail = client.get(f"/api/v1/papers/{paper.pk}").json()
    listing = client.get("/api/v1/papers", {"arxiv_id": "2503.22698"}).json()

    assert detail["title"] == paper.title and detail["authors"] == paper.authors
    assert [p["id"] for p in listing["results"]] == [paper.pk]
    assert client.get("/api/v1/papers/999999").status_code == 404


def test_ingest_needs_a_staff_token(client, fixtures_dir):
    with open(fixtures_dir / "kaggle-sample.json", "rb") as handle:
        anonymous = client.post("/api/v1/ingest", {"file": handle}, format="multipart")
    with open(fixtures_dir / "kaggle-sample.json", "rb") as handle:
        user = token_client(staff=False).post("/api/v1/ingest", {"file": handle},
                                              format="multipart")

    assert anonymous.status_code == 401
    assert user.status_code == 403
    assert Job.objects.count() == 0


def test_ingest_without_a_file_is_a_400(db):
    response = token_client(staff=True).post("/api/v1/ingest", {}, format="multipart")

    assert response.status_code == 400 and "file" in response.json()


def test_staff_ingest_runs_as_a_job_with_progress_and_row_errors(celery_worker, fixtures_dir):
    staff = token_client(staff=True)
    with open(fixtures_dir / "malformed.jsonl", "rb") as handle:
        response = staff.post("/api/v1/ingest", {"file": handle}, format="multipart")
    assert response.status_code == 202
    job_id = response.json()["id"]

    job = wait_for(lambda: (j := staff.get(f"/api/v1/jobs/{job_id}").json())["status"] == "done"
                   and j, timeout=60)

    assert job["total"] == 8 and job["processed"] == 8 and job["progress"] == 1.0
    assert job["stats"]["created"] == 3 and job["stats"]["failed"] == 5
    assert [e["line"] for e in job["errors"]] == [2, 3, 4, 6, 7]
    assert Paper.objects.count() == 3
    assert staff.get("/api/v1/jobs/999999").status_code == 404
    assert APIClient().get(f"/api/v1/jobs/{job_id}").status_code == 401  # file names, errors: staff
    assert APIClient().get("/api/v1/jobs/abc").json()["detail"].startswith("no such")
    # the new papers' name counts are queued by the ingestion, not left to the periodic job
    from search.models import ConceptStats

    wait_for(lambda: ConceptStats.objects.filter(papers=3).exists(), timeout=30)


def test_staff_see_the_query_plan(corpus):
    body = token_client(staff=True).get(
        "/api/v1/search", {"q": "segmentation", "category": "cs.CV", "mode": "semantic"}).json()

    assert body["debug"]["semantic"]["plan"] == "exact_filtered"


def test_the_openapi_schema_lists_the_contract(client, db):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ["/api/v1/search", "/api/v1/papers", "/api/v1/papers/{id}",
                 "/api/v1/papers/{id}/similar", "/api/v1/ingest", "/api/v1/jobs/{id}"]:
        assert path in paths


def test_the_api_is_throttled(client, db, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"anon": "3/min", "user": "600/min"}}

    responses = [client.get("/api/v1/papers") for _ in range(5)]

    assert [r.status_code for r in responses] == [200, 200, 200, 429, 429]
    assert responses[-1].json()["detail"].startswith("Request was throttled")
    assert int(responses[-1].headers["Retry-After"]) <= 60
