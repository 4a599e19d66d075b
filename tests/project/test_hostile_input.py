"""NUL bytes anywhere in a request: 400 naming the field, never a 500 from Postgres."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url, field", [
    ("/api/v1/search?q=sonar%00x", "q"),
    ("/api/v1/search?q=sonar&category=cs.CV%00", "category"),
    ("/api/v1/papers?arxiv_id=%00", "arxiv_id"),
    ("/api/v1/papers/1/similar?author=a%00b", "author"),
])
def test_the_api_answers_400_with_the_field(url, field):
    response = Client().get(url)

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert "NUL" in response.json()["errors"][field]


@pytest.mark.parametrize("url", ["/?q=%00", "/recommend/?positive=1&venue=%00",
                                 "/labels/?x=%00"])
def test_pages_answer_400_in_plain_text(url):
    response = Client().get(url)

    assert response.status_code == 400
    assert b"NUL" in response.content


def test_a_json_body_with_a_nul_is_refused():
    response = Client().post("/api/v1/recommend", data='{"positive": [1], "filters": '
                             '{"author": "a\\u0000"}}', content_type="application/json")

    assert response.status_code == 400
    assert "body" in response.json()["errors"]


def test_ordinary_requests_pass():
    assert Client().get("/api/v1/search?q=sonar").status_code == 200


def test_unknown_api_paths_answer_json_404():
    response = Client().get("/api/v1/jobs/abc")

    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert Client().get("/no-such-page/").status_code == 404


@pytest.mark.parametrize("url, field", [
    ("/api/v1/search?q=sonar+year:0000", "q"),
    ("/api/v1/search?q=sonar+year:%D9%A2%D9%A0%D9%A2%D9%A5", "q"),
    ("/api/v1/search?q=x&published_after=0000", "published_after"),
    ("/api/v1/search?q=x&published_before=0999-01-01", "published_before"),
    ("/api/v1/search?q=x&published_after=%C2%B2", "published_after"),
])
def test_odd_years_and_digits_are_a_400_naming_the_field(url, field):
    response = Client().get(url)

    assert response.status_code == 400, response.content[:300]
    assert field in response.json()["errors"]
