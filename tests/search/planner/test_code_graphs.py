"""The planner on the ternary code graphs: the whole-space graph, the per-category and
per-month graphs, and that a lagging copy on a code row never adds a result."""

from datetime import date

import numpy as np
import pytest

from search import services
from search.embedders import get_encoder
from search.models import Paper, PaperCode, PaperEmbedding
from search.params import SearchFilters
from search.planner import vector_ranking
from tests.search.graphs import index_exists, most_frequent_category, spread_over_months

pytestmark = pytest.mark.django_db


def test_ternary_search_returns_the_exact_neighbours_once_built(embedded):
    query = get_encoder().encode(["image restoration with transformers"])[0]
    exact, _ = vector_ranking(space=embedded, vector=query, k=10, filters=SearchFilters(),
                              precision="exact")

    before, plan_before = vector_ranking(space=embedded, vector=query, k=10,
                                         filters=SearchFilters(), precision="ternary")
    services.space_build_code(space=embedded)
    embedded.refresh_from_db()
    after, plan_after = vector_ranking(space=embedded, vector=query, k=10,
                                       filters=SearchFilters(), precision="ternary")

    assert plan_before["precision"] == "halfvec" and "not built" in plan_before["note"]
    assert plan_after["precision"] == "ternary"
    assert [p for p, _ in before] == [p for p, _ in after] == [p for p, _ in exact]
    assert after[0][1] == pytest.approx(exact[0][1], abs=1e-6)  # float scores


def test_frequent_categories_get_their_own_graph_and_it_serves_their_filter(embedded,
                                                                             monkeypatch):

    from search import planner

    monkeypatch.setattr(planner.limits, "EXACT_SCAN_MAX", 5)  # "frequent" = more than 5 papers here
    # the category's month graphs have their own test; here its whole graph is walked
    monkeypatch.setattr(planner.limits, "CATEGORY_MONTH_WALKS_MAX", 0)
    result = services.space_build_code(space=embedded)
    embedded.refresh_from_db()
    counts = {}
    for cats in Paper.objects.values_list("categories", flat=True):
        for c in cats:
            counts[c] = counts.get(c, 0) + 1
    frequent = sorted(c for c, n in counts.items() if n > 5)
    assert sorted(n for n in result["slice_indexes"] if "_cat_" in n) == sorted(
        planner.category_index_name(embedded, c) for c in frequent)
    category = frequent[0]
    assert index_exists(planner.category_index_name(embedded, category))

    query = get_encoder().encode(["robots that learn to grasp objects"])[0]
    for filters, expected_plan in (
            (SearchFilters(categories=(category,)), "category_graph"),
            (SearchFilters(categories=(category,), published_after=date(2025, 3, 1)),
             "category_graph_iterative")):
        exact, _ = vector_ranking(space=embedded, vector=query, k=5, filters=filters,
                                  precision="exact")
        got, plan = vector_ranking(space=embedded, vector=query, k=5, filters=filters,
                                   exact_scan_max=5)
        assert plan["plan"] == expected_plan
        assert [p for p, _ in got] == [p for p, _ in exact]

    # "similar to this paper" excludes the paper itself, on the same graph
    first = got[0][0]
    rest, plan = vector_ranking(space=embedded, vector=query, k=4, filters=filters,
                                exclude_ids=[first], exact_scan_max=5)
    assert plan["plan"] == expected_plan and first not in [p for p, _ in rest]
    assert [p for p, _ in rest] == [p for p, _ in exact][1:]


def test_a_lagging_category_copy_never_adds_a_paper_outside_the_category(embedded, monkeypatch):
    from search import planner

    monkeypatch.setattr(planner.limits, "EXACT_SCAN_MAX", 5)
    monkeypatch.setattr(planner.limits, "CATEGORY_MONTH_WALKS_MAX", 0)  # the whole category graph
    services.space_build_code(space=embedded)
    category = most_frequent_category()
    embedded.refresh_from_db()
    outsider = Paper.objects.exclude(categories__contains=[category]).order_by("pk").first()
    # A code row claiming the category its paper does not have (as a lost race would leave):
    PaperCode.objects.filter(embedding__paper=outsider).update(categories=[category])
    query = np.asarray(PaperEmbedding.objects.get(space=embedded, paper=outsider).embedding)

    got, plan = vector_ranking(space=embedded, vector=query, k=5,
                               filters=SearchFilters(categories=(category,)), exact_scan_max=5)

    assert plan["plan"].startswith("category_graph")
    assert outsider.pk not in [p for p, _ in got] and len(got) == 5
    assert all(category in Paper.objects.get(pk=p).categories for p, _ in got)

    # the same with a date filter, walked on the code rows' own dates

    insider = Paper.objects.filter(categories__contains=[category]).order_by("pk").first()
    recent = insider.published
    Paper.objects.filter(pk=insider.pk).update(published=date(2001, 1, 1))  # trigger syncs...
    PaperCode.objects.filter(embedding__paper=insider).update(published=recent)  # ...then lags
    query = np.asarray(PaperEmbedding.objects.get(space=embedded, paper=insider).embedding)
    got, plan = vector_ranking(space=embedded, vector=query, k=5, exact_scan_max=5,
                               filters=SearchFilters(categories=(category,),
                                                     published_after=date(2024, 1, 1)))
    assert plan["plan"].startswith("category_graph_iterative")
    assert insider.pk not in [p for p, _ in got] and len(got) == 5


def test_a_date_filter_walks_the_graphs_of_the_months_it_spans(embedded, monkeypatch):
    from search import planner

    months = [date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1), date(2025, 4, 1)]
    spread_over_months(months)  # 10 papers a month, dated the 1st to the 10th
    monkeypatch.setattr(planner.limits, "EXACT_SCAN_MAX", 5)
    result = services.space_build_code(space=embedded)
    embedded.refresh_from_db()
    assert {planner.month_index_name(embedded, m) for m in months} <= set(result["slice_indexes"])
    query = get_encoder().encode(["language models for low-resource translation"])[0]

    monkeypatch.setattr(planner.limits, "MONTH_EXACT_MAX", 3)
    cases = [
        # whole months, and the open end after the last graph (empty here) ranked exactly
        (SearchFilters(published_after=date(2025, 2, 1)), (3, 0, 1)),
        # a cut month with few rows in range (ranked exactly) + the months after it
        (SearchFilters(published_after=date(2025, 2, 9)), (2, 0, 2)),
        # a cut month with many rows in range: walked with the date filter
        (SearchFilters(published_after=date(2025, 3, 3), published_before=date(2025, 3, 31)),
         (0, 1, 0)),
        # days before the first month graph: ranked exactly, with the whole January graph
        (SearchFilters(published_after=date(2024, 12, 1), published_before=date(2025, 1, 31)),
         (1, 0, 1)),
    ]
    for filters, (whole, cut, exact_ranges) in cases:
        exact, _ = vector_ranking(space=embedded, vector=query, k=5, filters=filters,
                                  precision="exact")
        got, plan = vector_ranking(space=embedded, vector=query, k=5, filters=filters,
                                   exact_scan_max=5)
        assert plan["plan"] == "month_graphs", (filters, plan)
        assert plan["months"] == {"whole": whole, "cut": cut, "exact_ranges": exact_ranges}
        assert [p for p, _ in got] == [p for p, _ in exact], filters

    # more months than MONTH_WALKS_MAX: one walk of the whole graph instead
    monkeypatch.setattr(planner.limits, "MONTH_WALKS_MAX", 2)
    _, plan = vector_ranking(space=embedded, vector=query, k=5, exact_scan_max=5,
                             filters=SearchFilters(published_after=date(2025, 1, 1)))
    assert plan["plan"] == "hnsw_iterative"


def test_a_category_and_date_filter_walks_that_categorys_month_graphs(embedded, monkeypatch):
    from search import planner

    months = [date(2025, 1, 1), date(2025, 2, 1)]
    spread_over_months(months)  # 20 papers a month, dated the 1st to the 20th
    category = most_frequent_category()
    per_month = [Paper.objects.filter(categories__contains=[category], published__month=m.month)
                 .count() for m in months]
    assert min(per_month) >= 2
    k = min(3, min(per_month))  # a month's graph holds enough for a full page
    monkeypatch.setattr(planner.limits, "EXACT_SCAN_MAX", min(per_month) - 1)  # both months qualify
    result = services.space_build_code(space=embedded)
    embedded.refresh_from_db()
    assert {planner.month_index_name(embedded, m, category) for m in months} <= set(
        result["slice_indexes"])
    query = get_encoder().encode(["language models for low-resource translation"])[0]

    for filters, shape in (
            (SearchFilters(categories=(category,), published_after=date(2025, 1, 1)), (2, 0, 1)),
            (SearchFilters(categories=(category,), published_after=date(2025, 1, 1),
                           published_before=date(2025, 1, 31)), (1, 0, 0))):
        exact, _ = vector_ranking(space=embedded, vector=query, k=k, filters=filters,
                                  precision="exact")
        got, plan = vector_ranking(space=embedded, vector=query, k=k, filters=filters,
                                   exact_scan_max=min(per_month) - 1)
        assert plan["plan"] == "category_month_graphs", (filters, plan)
        assert tuple(plan["months"].values()) == shape
        assert [p for p, _ in got] == [p for p, _ in exact]


def test_a_lagging_date_copy_never_adds_a_paper_outside_the_range(embedded, monkeypatch):
    from search import planner

    spread_over_months([date(2025, 1, 1), date(2025, 2, 1)])
    monkeypatch.setattr(planner.limits, "EXACT_SCAN_MAX", 5)
    services.space_build_code(space=embedded)
    embedded.refresh_from_db()
    insider = Paper.objects.filter(published__month=2).order_by("pk").first()
    Paper.objects.filter(pk=insider.pk).update(published=date(2001, 1, 1))  # trigger syncs...
    PaperCode.objects.filter(embedding__paper=insider).update(published=date(2025, 2, 1))  # lags
    query = np.asarray(PaperEmbedding.objects.get(space=embedded, paper=insider).embedding)

    got, plan = vector_ranking(space=embedded, vector=query, k=5, exact_scan_max=5,
                               filters=SearchFilters(published_after=date(2025, 2, 1)))

    assert plan["plan"] == "month_graphs"
    assert insider.pk not in [p for p, _ in got] and len(got) == 5
