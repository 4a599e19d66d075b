"""The request path's shortcuts give what the long way gives: result dicts built by hand are
ResultSerializer's, the one-statement keyword results are hydrate(keyword_ranking(...)), the
narrow hydrate is the ORM's only(), and the per-process catalogue follows a switch."""

import pytest

from search import catalogue, selectors
from search.api import ResultSerializer, result_data
from search.models import EmbeddingSpace, Paper
from search.operations.registry import registry_switch
from search.params import SearchFilters

pytestmark = pytest.mark.django_db


def test_result_dicts_are_the_serializers(embedded):
    ranked = [(pid, 0.5 + i / 100) for i, pid in enumerate(Paper.objects.values_list("pk", flat=True)[:8])]
    items = selectors.hydrate(ranked, selectors.LISTED_FIELDS)
    items[0].details["explanation"] = {"similarity": {"generic": 0.9}}
    assert [result_data(item) for item in items] == ResultSerializer(items, many=True).data


@pytest.mark.parametrize("query, filters", [
    ("sonar underwater", SearchFilters()),
    ('"neural network" -image', SearchFilters()),
    ("learning", SearchFilters(categories=("cs.CV",))),
])
def test_keyword_results_in_one_statement_are_the_ranking_hydrated(embedded, query, filters):
    one = selectors.keyword_results(query=query, k=10, filters=filters,
                                    fields=selectors.LISTED_FIELDS)
    two = selectors.hydrate(selectors.keyword_ranking(query=query, k=10, filters=filters))
    assert [result_data(r) for r in one] == [result_data(r) for r in two]
    assert one, "the fixture corpus matches each query"


def test_narrow_hydrate_loads_the_same_papers_as_the_orm(embedded):
    ids = list(Paper.objects.values_list("pk", flat=True)[:5])
    narrow = selectors.hydrate([(pid, 1.0) for pid in reversed(ids)], selectors.LISTED_FIELDS)
    assert [r.paper.pk for r in narrow] == list(reversed(ids))
    for item in narrow:
        orm = Paper.objects.only(*selectors.LISTED_FIELDS).get(pk=item.paper.pk)
        assert item.paper.get_deferred_fields() == orm.get_deferred_fields()
        assert all(getattr(item.paper, f) == getattr(orm, f) for f in selectors.LISTED_FIELDS)


@pytest.mark.django_db(transaction=True)
def test_the_catalogue_follows_a_switch_at_once_in_this_process(embedded):
    catalogue.forget()
    before = selectors.active_space()
    assert before is not None and catalogue.active_spaces()["generic"].pk == before.pk
    other = EmbeddingSpace.objects.create(name="other", model_name=before.model_name,
                                          model_version="x", dimension=before.dimension,
                                          aspect="generic", is_active=False)
    registry_switch(space=other, allow_incomplete=True)
    assert selectors.active_space().pk == other.pk  # not the remembered one
    catalogue.forget()
