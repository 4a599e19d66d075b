"""The served OpenAPI schema documents what the API answers: error codes, bounds, pages."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        return Client().get("/api/schema/?format=json").json()


def test_every_operation_documents_its_errors(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert {"429", "503"} <= codes, (method, path, codes)
    assert "400" in schema["paths"]["/api/v1/search"]["get"]["responses"]
    assert {"401", "403"} <= set(schema["paths"]["/api/v1/jobs/{id}"]["get"]["responses"])


def test_k_has_its_bounds(schema):
    k = next(p for p in schema["paths"]["/api/v1/search"]["get"]["parameters"]
             if p["name"] == "k")
    assert (k["schema"]["minimum"], k["schema"]["maximum"]) == (1, 100)


def test_the_paper_list_is_documented_as_the_page_it_serves(schema):
    body = schema["paths"]["/api/v1/papers"]["get"]["responses"]["200"]["content"]
    ref = body["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert {"count", "next", "previous", "results"} <= set(
        schema["components"]["schemas"][ref]["properties"])


def test_an_upload_over_the_limit_is_refused_from_its_header(settings):
    from django.contrib.auth import get_user_model

    settings.INGEST_MAX_UPLOAD_BYTES = 1024
    staff = get_user_model().objects.create_superuser("ops", "ops@example.org", "pw-123456")
    client = Client()
    client.force_login(staff)
    response = client.post("/api/v1/ingest", data=b"x" * 200_000,
                           content_type="multipart/form-data; boundary=zzz")

    assert response.status_code == 413 and "MiB" in response.json()["detail"]
