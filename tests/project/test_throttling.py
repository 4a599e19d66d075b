"""The API rate limit is atomic: concurrent requests cannot slip past it."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.test import Client

from project.throttling import parse_rate

pytestmark = pytest.mark.django_db(transaction=True)


def test_rates_parse_and_bad_ones_say_how():
    assert parse_rate("120/min") == (120, 60)
    assert parse_rate("10/s") == (10, 1)
    with pytest.raises(ValueError, match="120/min"):
        parse_rate("lots")


def test_concurrent_anonymous_requests_get_exactly_the_limit(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"anon": "20/hour", "user": "50/hour"}}

    def status(_):
        return Client().get("/api/v1/status").status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(status, range(60)))

    assert codes.count(200) == 20  # DRF's read-then-write throttle let ~1.7x through
    assert codes.count(429) == 40
    refused = Client().get("/api/v1/status")
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
