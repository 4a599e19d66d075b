"""The planner against a brute-force oracle: every filter, combinations, every precision."""

from datetime import date

import numpy as np
import pytest

from search.embedders import get_encoder
from search.models import Paper, PaperEmbedding
from search.params import SearchFilters
from search.planner import name_tokens, vector_ranking

pytestmark = pytest.mark.django_db


def oracle(space, query, filters: SearchFilters, k: int) -> list[int]:
    """Brute force in Python: filter every paper, rank by cosine of the stored float vectors."""
    def keep(p: Paper) -> bool:
        f = filters
        return all([
            f.published_after is None or (p.published and p.published >= f.published_after),
            f.published_before is None or (p.published and p.published <= f.published_before),
            not f.categories or bool(set(f.categories) & set(p.categories)),
            all(set(name_tokens(a)) <= set(name_tokens(" ".join(p.authors)))
                and any(a.lower() in name.lower() for name in p.authors) for a in f.authors),
            not f.venue or f.venue.lower() in p.venue.lower(),
            set(f.tasks) <= set(p.tasks), set(f.methods) <= set(p.methods),
            set(f.datasets) <= set(p.datasets),
        ])
    vectors = {e.paper_id: np.asarray(e.embedding) for e in PaperEmbedding.objects.filter(space=space)}
    scored = sorted(((float(np.dot(vectors[p.pk], query)), p.pk)
                     for p in Paper.objects.all() if keep(p)), key=lambda t: (-t[0], t[1]))
    return [pk for _, pk in scored[:k]]


FILTERS = {
    "none": SearchFilters(),
    "after": SearchFilters(published_after=date(2025, 1, 1)),
    "before": SearchFilters(published_before=date(2010, 1, 1)),
    "category_any_of": SearchFilters(categories=("cs.RO", "hep-ph")),
    "author": SearchFilters(authors=("wang",)),
    "venue": SearchFilters(venue="phys"),
    "task": SearchFilters(tasks=("Image_Super-Resolution",)),
    "dataset": SearchFilters(datasets=("Set5_-_4x_upscaling",)),
    "category_and_date": SearchFilters(categories=("cs.CV",), published_after=date(2025, 4, 1),
                                       published_before=date(2025, 4, 1)),
    "author_and_category": SearchFilters(authors=("li",), categories=("cs.CV",)),
    "full_author_name": SearchFilters(authors=("Matias Valdenegro-Toro",)),
    "nothing_matches": SearchFilters(categories=("astro-ph.XX",)),
}


@pytest.mark.parametrize("name", FILTERS)
@pytest.mark.parametrize("exact_scan_max", [100_000, 0], ids=["exact_path", "hnsw_path"])
def test_filtered_results_equal_the_brute_force_oracle(corpus, name, exact_scan_max):
    filters = FILTERS[name]
    query = get_encoder().encode(["image segmentation with deep networks"])[0]
    expected = oracle(corpus, query, filters, k=10)

    ranked, plan = vector_ranking(space=corpus, vector=query, k=10, filters=filters,
                                  exact_scan_max=exact_scan_max, precision="float")

    assert [pid for pid, _ in ranked] == expected, plan
    if name != "none" and expected:  # no match at all is answered by the count alone
        assert plan["plan"].startswith("exact_filtered" if exact_scan_max else "hnsw_iterative")
    if not exact_scan_max and len(expected) == 10:
        assert "fallback" not in plan["plan"]  # the iterative scan itself found all ten


def test_it_never_comes_back_short_when_enough_rows_match(corpus):
    query = get_encoder().encode(["particle physics"])[0]
    filters = SearchFilters(published_before=date(2010, 1, 1))  # the 15 Kaggle papers
    for exact_scan_max in (100_000, 0):
        ranked, _ = vector_ranking(space=corpus, vector=query, k=10, filters=filters,
                                   exact_scan_max=exact_scan_max)
        assert len(ranked) == 10
        few, _ = vector_ranking(space=corpus, vector=query, k=10, exact_scan_max=exact_scan_max,
                                filters=SearchFilters(tasks=("Image_Super-Resolution",)))
        assert len(few) == 3  # min(k, matches)


@pytest.mark.parametrize("precision", ["exact", "float", "halfvec", "binary"])
def test_each_precision_mode_returns_the_exact_neighbours(corpus, precision):
    query = get_encoder().encode(["language models for low resource translation"])[0]
    expected = oracle(corpus, query, SearchFilters(), k=10)

    ranked, plan = vector_ranking(space=corpus, vector=query, k=10, filters=SearchFilters(),
                                  precision=precision)

    assert [pid for pid, _ in ranked] == expected
    assert plan["precision"] == precision
    # scores are always full-precision cosine similarities
    vec = np.asarray(PaperEmbedding.objects.get(space=corpus, paper_id=ranked[0][0]).embedding)
    assert ranked[0][1] == pytest.approx(float(np.dot(vec, query)), abs=1e-5)


def test_an_invalid_precision_is_a_400(client, db):
    response = client.get("/api/v1/search", {"q": "x", "precision": "int3"})

    assert response.status_code == 400 and "precision" in response.json()["errors"]


@pytest.mark.parametrize("precision", ["float", "binary"])
def test_an_aspect_space_serves_a_precision_it_has_no_graph_for_with_halfvec(corpus, precision):
    from search import services

    space = services.space_for_model(aspect="task")
    services.papers_embed(paper_ids=list(Paper.objects.values_list("pk", flat=True)), space=space)
    query = get_encoder().encode(["language models for low resource translation"])[0]

    ranked, plan = vector_ranking(space=space, vector=query, k=10, filters=SearchFilters(),
                                  precision=precision)

    assert plan["precision"] == "halfvec" and plan["plan"] == "hnsw"
    assert plan["note"] == f"this space has no {precision} graph: used halfvec"
    assert [pid for pid, _ in ranked] == oracle(space, query, SearchFilters(), k=10)


def test_a_space_without_any_graph_of_its_precisions_is_ranked_exactly(corpus, settings):
    from search import services

    settings.ASPECT_INDEX_PRECISIONS = []
    space = services.space_for_model(aspect="dataset")
    services.papers_embed(paper_ids=list(Paper.objects.values_list("pk", flat=True)), space=space)
    query = get_encoder().encode(["graph neural networks"])[0]

    ranked, plan = vector_ranking(space=space, vector=query, k=10, filters=SearchFilters(),
                                  precision="halfvec")

    assert plan["precision"] == "exact" and plan["plan"] == "exact"
    assert [pid for pid, _ in ranked] == oracle(space, query, SearchFilters(), k=10)
