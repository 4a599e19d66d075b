"""One parser per endpoint: the page's query string and the API's JSON give the same request,
and the same message for the same mistake."""

from datetime import date

import pytest
from django.http import QueryDict

from recommend.params import (
    MAX_EXAMPLES,
    RecommendRequest,
    SimilarParams,
    parse_recommend,
    parse_similar,
)
from search.params import InvalidParams, SearchFilters

ASPECTS = ["generic", "task", "method", "dataset"]


def errors_of(parse, *args, **kwargs) -> dict[str, str]:
    with pytest.raises(InvalidParams) as caught:
        parse(*args, **kwargs)
    return caught.value.errors


def test_similar_defaults_to_overall_ten_unfiltered():
    assert parse_similar(QueryDict(""), aspects=ASPECTS) == SimilarParams("generic", 10, SearchFilters())
    params = parse_similar(QueryDict("aspect=task&k=5&published_after=2025-01-01"), aspects=ASPECTS)
    assert params == SimilarParams("task", 5, SearchFilters(published_after=date(2025, 1, 1)))


@pytest.mark.parametrize("query, field, message", [
    ("aspect=colour", "aspect", "'colour' is not an aspect; use one of generic, task, method, dataset"),
    ("k=0", "k", "k must be between 1 and 100"),
    ("k=101", "k", "k must be between 1 and 100"),
    ("k=ten", "k", "'ten' is not a whole number"),
    ("published_after=soon", "published_after",
     "'soon' is not a date; use YYYY-MM-DD (or YYYY), 1000 or later"),
])
def test_similar_names_each_bad_field_the_same_for_page_and_api(query, field, message):
    for strict in (True, False):  # the API, the page
        assert errors_of(parse_similar, QueryDict(query), aspects=ASPECTS, strict=strict)[field] == message


def test_only_the_api_refuses_unknown_similar_parameters():
    assert "unknown" in errors_of(parse_similar, QueryDict("colour=red"), aspects=ASPECTS)
    assert parse_similar(QueryDict("colour=red"), aspects=ASPECTS, strict=False).aspect == "generic"


def test_the_page_query_string_and_the_api_json_are_one_request():
    page = parse_recommend(QueryDict("positive=1&positive=2&negative=3&w_task=0.5&w_method=0"
                                     "&category=cs.CV&k=7"), aspects=ASPECTS, strict=False)
    api = parse_recommend({"positive": [1, 2], "negative": [3], "aspects": {"task": 0.5, "method": 0},
                           "filters": {"category": ["cs.CV"]}, "k": 7}, aspects=ASPECTS)

    assert page == api == RecommendRequest(positive=[1, 2], negative=[3], aspects={"task": 0.5},
                                           filters=SearchFilters(categories=("cs.CV",)), k=7)


def test_recommend_defaults_to_overall_and_the_callers_k():
    wanted = parse_recommend(QueryDict("positive=4"), aspects=ASPECTS, default_k=20, strict=False)
    assert wanted.aspects == {"generic": 1.0} and wanted.k == 20 and wanted.candidates is None
    assert parse_recommend({"positive": [4]}, aspects=ASPECTS).k == 10


# (query string, JSON, field, message): the same mistake made on the page and in the API
MISTAKES = [
    ("positive=%C2%B2", {"positive": ["²"]}, "positive", "'²' is not a paper id (a whole number above 0)"),
    ("positive=-1", {"positive": [-1]}, "positive", None),
    ("positive=1.5", {"positive": [1.5]}, "positive", None),
    ("", {}, "positive", "give at least one positive example (a paper id)"),
    ("positive=1&negative=x", {"positive": [1], "negative": ["x"]}, "negative",
     "'x' is not a paper id (a whole number above 0)"),
    ("&".join(f"positive={i}" for i in range(1, MAX_EXAMPLES + 2)),
     {"positive": list(range(1, MAX_EXAMPLES + 2))}, "positive", f"at most {MAX_EXAMPLES} positive paper ids"),
    ("positive=1&w_task=101", {"positive": [1], "aspects": {"task": 101}}, "aspects",
     "the weight of 'task' must be a number between 0 and 100"),
    ("positive=1&w_task=-0.5", {"positive": [1], "aspects": {"task": -0.5}}, "aspects",
     "the weight of 'task' must be a number between 0 and 100"),
    ("positive=1&w_task=nan", {"positive": [1], "aspects": {"task": "nan"}}, "aspects",
     "the weight of 'task' must be a number between 0 and 100"),
    ("positive=1&w_colour=1", {"positive": [1], "aspects": {"colour": 1}}, "aspects",
     "'colour' is not an aspect; use one of generic, task, method, dataset"),
    ("positive=1&w_generic=0&w_task=0", {"positive": [1], "aspects": {"generic": 0, "task": 0}}, "aspects",
     "give at least one aspect a weight above 0"),
    ("positive=1&k=1000", {"positive": [1], "k": 1000}, "k", "k must be between 1 and 100"),
    ("positive=1&k=2.5", {"positive": [1], "k": "2.5"}, "k", "'2.5' is not a whole number"),
    ("positive=1&published_after=soon", {"positive": [1], "filters": {"published_after": "soon"}}, "filters",
     "published_after: 'soon' is not a date; use YYYY-MM-DD (or YYYY), 1000 or later"),
]


@pytest.mark.parametrize("query, payload, field, message", MISTAKES)
def test_recommend_names_the_same_mistake_the_same_way_on_the_page_and_in_the_api(
        query, payload, field, message):
    page = errors_of(parse_recommend, QueryDict(query), aspects=ASPECTS, strict=False)
    api = errors_of(parse_recommend, payload, aspects=ASPECTS)

    assert page[field] == api[field]
    if message:
        assert api[field] == message


@pytest.mark.parametrize("payload, field", [
    ({"positive": [1], "filters": {"shape": "round"}}, "filters"),
    ({"positive": [1], "negatives": [2]}, "unknown"),
    ({"positive": [True]}, "positive"),
    ({"positive": [1], "aspects": {"task": True}}, "aspects"),
    ({"positive": [1], "aspects": [1.0]}, "aspects"),
    ({"positive": [1], "candidates": ["a"]}, "candidates"),
    ({"positive": [1], "k": True}, "k"),
])
def test_recommend_json_refuses_what_is_not_the_documented_shape(payload, field):
    assert field in errors_of(parse_recommend, payload, aspects=ASPECTS)


def test_a_body_that_is_not_an_object_is_refused():
    assert "body" in errors_of(parse_recommend, [1, 2], aspects=ASPECTS)


def test_given_candidates_and_repeated_ids():
    wanted = parse_recommend({"positive": [3, 3, "4"], "candidates": [5, 6]}, aspects=ASPECTS)
    assert wanted.positive == [3, 4] and wanted.candidates == [5, 6]
