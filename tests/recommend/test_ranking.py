"""The reader model (recommend.ranking) on synthetic clustered papers: pure, no database."""

import numpy as np
import pytest
import scipy.sparse as sp

from recommend import ranking
from recommend.ranking import PaperFeatures, ReaderModel


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def papers(n, centre, rng, spread=0.6, vocab=50, topic_words=()):
    """n papers near `centre` in two spaces, with tf-idf rows that use the topic's words."""
    d = centre.shape[0]
    generic = unit(centre + spread * rng.standard_normal((n, d)))
    task = unit(centre[::-1] + spread * rng.standard_normal((n, d)))
    words = rng.random((n, vocab)) * (rng.random((n, vocab)) < 0.1)
    words[:, list(topic_words)] += 1.0
    words = sp.csr_matrix(unit(words + 1e-6))
    return PaperFeatures({"generic": generic, "task": task}, words, "lex-1")


@pytest.fixture
def corpus():
    rng = np.random.default_rng(13)
    d = 32
    topic = unit(rng.standard_normal((1, d)))[0]
    liked = papers(12, topic, rng, topic_words=(3, 4))
    background = ranking.stack([papers(40, unit(rng.standard_normal((1, d)))[0], rng) for _ in range(10)])
    return liked, background


def test_the_linear_model_ranks_held_out_papers_of_the_library_topic_above_background(corpus):
    liked, background = corpus
    train_bg, candidates_bg = background.take(range(0, 400, 2)), background.take(range(1, 400, 2))
    model = ranking.train(liked.take(range(8)), PaperFeatures({}, None), train_bg)
    assert model.kind == "linear"
    held_out = model.score(liked.take(range(8, 12)))
    others = model.score(candidates_bg)
    assert held_out.min() > np.percentile(others, 95)


def test_contributions_add_up_to_the_score_and_query_vectors_are_unit(corpus):
    liked, background = corpus
    model = ranking.train(liked.take(range(8)), PaperFeatures({}, None), background)
    parts = model.contributions(background)
    assert set(parts) == {"generic", "task", "words"}
    np.testing.assert_allclose(sum(parts.values()) + model.intercept, model.score(background), rtol=1e-4, atol=1e-4)
    for vector in model.query_vectors().values():
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


def test_round_trip_through_bytes_gives_identical_scores(corpus):
    liked, background = corpus
    model = ranking.train(liked.take(range(8)), liked.take([9]), background)
    data = model.to_bytes()
    again = ReaderModel.from_bytes(data)
    assert again.kind == model.kind
    np.testing.assert_array_equal(again.score(background), model.score(background))
    assert b"pickle" not in data


def test_below_the_minimum_of_positives_it_falls_back_to_the_centroid(corpus):
    liked, background = corpus
    few = liked.take(range(ranking.DEFAULT.min_positives - 1))
    model = ranking.train(few, PaperFeatures({}, None), background)
    assert model.kind == "centroid"
    np.testing.assert_allclose(np.linalg.norm(model.coef["generic"]),
                               ranking.DEFAULT.weights["generic"], rtol=1e-5)


def test_a_lexical_refit_since_training_leaves_the_words_out_instead_of_misreading_them(corpus):
    liked, background = corpus
    model = ranking.train(liked.take(range(8)), PaperFeatures({}, None), background)
    refitted = PaperFeatures(background.vectors, background.words, "lex-2")
    assert "words" not in model.contributions(refitted)
