"""Filter SQL (search.planner.filters) through the planner."""


import pytest

from search.embedders import get_encoder
from search.params import SearchFilters
from search.planner import vector_ranking

pytestmark = pytest.mark.django_db


def test_an_author_filter_matches_whole_name_parts(corpus):
    from search.models import Paper

    paper = Paper.objects.get(arxiv_id="2503.22880")
    assert "valdenegro" in paper.author_tokens and "toro" in paper.author_tokens
    query = get_encoder().encode(["sonar"])[0]
    for author, expected in (("valdenegro-toro", True), ("VALDENEGRO", True), ("valdeneg", False)):
        ranked, _ = vector_ranking(space=corpus, vector=query, k=10,
                                   filters=SearchFilters(authors=(author,)))
        assert (paper.pk in [pid for pid, _ in ranked]) is expected, author
