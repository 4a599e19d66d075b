"""MaxSim and MUVERA fixed-dimensional encodings (search.multivector) against hand-computed
values: pure numpy, no database."""

import numpy as np
import pytest

from search.multivector import (
    FdeParams,
    best_pairs,
    fde_document,
    fde_query,
    maxsim,
    maxsim_many,
)

Q = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
D = np.array([[0.6, 0.8], [1.0, 0.0]], dtype=np.float32)


def test_maxsim_is_the_mean_of_each_query_rows_best_cosine():
    # row 1: max(0.6, 1.0) = 1.0; row 2: max(0.8, 0.0) = 0.8
    assert maxsim(Q, D) == pytest.approx(0.9)
    # weighted 1 : 3 -> (1.0 + 3 * 0.8) / 4
    assert maxsim(Q, D, query_weights=np.array([1.0, 3.0])) == pytest.approx(0.85)
    # not symmetric: D's rows against Q: max(0.6, 0.8) = 0.8, max(1, 0) = 1
    assert maxsim(D, Q) == pytest.approx(0.9)
    assert maxsim(Q[:1], D[:1]) == pytest.approx(0.6)


def test_an_empty_side_scores_zero():
    empty = np.zeros((0, 2), dtype=np.float32)
    assert maxsim(Q, empty) == 0.0
    assert maxsim(empty, D) == 0.0
    assert list(maxsim_many(Q, [D, empty, Q])) == pytest.approx([0.9, 0.0, 1.0])


def test_maxsim_many_equals_maxsim_per_document():
    rng = np.random.default_rng(0)
    q = rng.standard_normal((3, 8)).astype(np.float32)
    docs = [rng.standard_normal((n, 8)).astype(np.float32) for n in (1, 4, 7)]
    assert list(maxsim_many(q, docs)) == pytest.approx([maxsim(q, d) for d in docs], abs=1e-5)


def test_best_pairs_name_the_aligned_rows_strongest_first():
    assert best_pairs(Q, D, top=2) == [(0, 1, pytest.approx(1.0)), (1, 0, pytest.approx(0.8))]
    assert best_pairs(Q, np.zeros((0, 2))) == []


def _unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_a_one_row_document_fills_every_bucket_so_its_fde_product_is_exact():
    params = FdeParams(dim_in=16, k_sim=3, reps=5, d_proj=0, seed=1)
    rng = np.random.default_rng(1)
    doc, query = _unit(rng, 1, 16), _unit(rng, 3, 16)
    assert fde_document(doc, params).shape == (params.dimension,) == (5 * 8 * 16,)
    # every bucket holds the one row, so <fde_q, fde_d> = R * sum_q <q, d> = R * Chamfer
    chamfer = float((query @ doc.T).max(axis=1).sum())
    assert fde_query(query, params) @ fde_document(doc, params) == pytest.approx(5 * chamfer, rel=1e-4)


def test_fde_inner_products_rank_documents_like_chamfer():
    params = FdeParams(dim_in=32, k_sim=3, reps=20, d_proj=0, seed=3)
    rng = np.random.default_rng(3)
    query = _unit(rng, 4, 32)
    docs = [_unit(rng, 6, 32) for _ in range(30)]
    # a few documents hold near-copies of the query rows
    for j in range(5):
        docs[j][:2] = query[:2] + 0.05 * j * rng.standard_normal((2, 32))
    chamfer = np.array([(query @ d.T).max(axis=1).sum() for d in docs])
    fde = np.array([fde_query(query, params) @ fde_document(d, params) for d in docs])
    assert int(np.argmax(fde)) == int(np.argmax(chamfer))
    assert np.corrcoef(chamfer, fde)[0, 1] > 0.8


def test_the_encoding_is_fixed_by_its_parameters_and_refuses_other_dimensions():
    params = FdeParams(dim_in=16, k_sim=2, reps=3, d_proj=4, seed=9)
    x = _unit(np.random.default_rng(5), 5, 16)
    assert np.array_equal(fde_document(x, params), fde_document(x, FdeParams(16, 2, 3, 4, 9)))
    assert params.version != FdeParams(16, 2, 3, 4, 10).version
    assert not fde_query(np.zeros((0, 16)), params).any()
    with pytest.raises(ValueError):
        fde_query(_unit(np.random.default_rng(5), 2, 8), params)
