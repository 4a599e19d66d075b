"""How the planner talks to Postgres: an index scan is one round trip with its settings
local to it, and a filter whose size Postgres estimates well is not counted before the
graph walk it needs anyway."""

from datetime import date

import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from search.embedders import get_encoder
from search.params import SearchFilters
from search.planner import index_scan, vector_ranking
from search.planner.scans import execute_with_settings

SETTINGS = {"hnsw.ef_search": "41", "enable_sort": "off"}
PROBE = "SELECT current_setting('hnsw.ef_search', true), current_setting('enable_sort'), %s"


def session_settings() -> tuple[str, str]:
    with connection.cursor() as cursor:
        # (a placeholder setting reads NULL before its first SET, '' after a SET LOCAL ended)
        cursor.execute("SELECT coalesce(current_setting('hnsw.ef_search', true), ''), "
                       "current_setting('enable_sort')")
        return cursor.fetchone()


@pytest.mark.django_db(transaction=True)  # autocommit, as a request runs (no test transaction)
def test_settings_hold_for_the_query_alone_in_one_round_trip():
    before = session_settings()
    with CaptureQueriesContext(connection) as queries, connection.cursor() as cursor:
        rows = execute_with_settings(cursor, SETTINGS, PROBE, [7])

    assert rows == [("41", "off", 7)]
    assert len(queries) == 1  # no BEGIN / SET / COMMIT of their own
    assert session_settings() == before  # nothing left on the (pooled) connection
    assert before[1] == "on"


@pytest.mark.django_db(transaction=True)
def test_with_server_side_binding_the_settings_are_set_in_one_statement():
    connection.ensure_connection()
    before = session_settings()
    with psycopg.Cursor(connection.connection) as cursor:  # binds on the server
        rows = execute_with_settings(cursor, SETTINGS, PROBE, [7])

    assert rows == [("41", "off", 7)]
    assert session_settings() == before


@pytest.mark.django_db
def test_a_setting_written_into_the_sql_must_be_a_plain_word():
    with connection.cursor() as cursor, pytest.raises(ValueError):
        execute_with_settings(cursor, {"enable_sort": "off; DROP TABLE x"}, "SELECT 1", [])


@pytest.mark.django_db(transaction=True)
def test_an_index_scan_is_one_statement(corpus):
    query = get_encoder().encode(["image segmentation with deep networks"])[0]
    for iterative in (False, True):
        with CaptureQueriesContext(connection) as queries:
            rows = index_scan(corpus, query, 10, "TRUE", [], precision="halfvec",
                              iterative=iterative)
        assert len(rows) == 10 and len(queries) == 1


def analysed():
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE search_paper")


def capped_reads(queries) -> int:
    return sum("matching AS MATERIALIZED" in q["sql"] for q in queries.captured_queries)


@pytest.mark.django_db
def test_a_date_range_estimated_just_above_the_threshold_is_not_counted_first(corpus):
    analysed()
    query = get_encoder().encode(["image segmentation with deep networks"])[0]
    filters = SearchFilters(published_after=date(2025, 1, 1))
    from search.planner import count_matching, estimate_matching

    matches, estimate = count_matching(filters, cap=10**6), estimate_matching(filters)
    threshold = int(estimate / 1.5)  # the estimate within 2x above it
    assert matches > threshold >= 10

    with CaptureQueriesContext(connection) as queries:
        ranked, plan = vector_ranking(space=corpus, vector=query, k=10, filters=filters,
                                      exact_scan_max=threshold, precision="float")

    assert capped_reads(queries) == 0, plan
    assert plan["matching_estimate"].startswith("~") and plan["plan"] == "hnsw_iterative"
    assert len(ranked) == 10


@pytest.mark.django_db
def test_an_author_filter_near_the_threshold_is_still_counted(corpus):
    analysed()
    query = get_encoder().encode(["image segmentation with deep networks"])[0]
    filters = SearchFilters(authors=("wang",))
    from search.planner import estimate_matching

    estimate = estimate_matching(filters)
    with CaptureQueriesContext(connection) as queries:
        _, plan = vector_ranking(space=corpus, vector=query, k=10, filters=filters,
                                 exact_scan_max=max(1, int(estimate / 1.5)), precision="float")

    assert capped_reads(queries) == 1, plan  # authors are estimated loosely: counted
