"""The ternary code (search.codes): its distance."""

import numpy as np
import pytest

from search import codes

pytestmark = pytest.mark.django_db


def test_hamming_distance_between_codes_is_the_l1_distance_between_levels():
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(500, 16)).astype(np.float32)
    thresholds = codes.fit_thresholds(vectors)
    a, b = codes.encode(vectors[:50], thresholds), codes.encode(vectors[50:100], thresholds)

    levels = lambda v: (v[:, None, :] > thresholds[None]).sum(axis=1)  # noqa: E731
    hamming = (a != b).sum(axis=1)
    l1 = np.abs(levels(vectors[:50]) - levels(vectors[50:100])).sum(axis=1)
    assert (hamming == l1).all()
    assert thresholds.shape == (2, 16) and a.shape == (50, 32)
    # tertiles: each level holds about a third of the values
    counts = np.bincount(levels(vectors).ravel(), minlength=3) / vectors.size
    assert np.allclose(counts, 1 / 3, atol=0.01)
