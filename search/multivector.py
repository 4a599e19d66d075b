"""Multi-vector matching of abstracts by their sentences (pure numpy, no database).

MaxSim (late interaction): a query's sentences each find their best-matching sentence of the
candidate; the score is the mean of those best cosines. It is exact but needs every candidate's
sentences, so at corpus scale candidates come from MUVERA-style fixed-dimensional encodings
(FDEs): one vector per paper (and facet) whose inner product with a query's FDE approximates
the Chamfer similarity sum_q max_d <q, d>, i.e. m x MaxSim for a query of m rows, the same
ranking for a fixed query. An HNSW walk over FDEs finds candidates, MaxSim reranks them.

FDE (Dhulipala et al., MUVERA, 2024), as built here:
- per repetition r of R: k_sim random hyperplanes split the sphere into 2^k_sim buckets
  (SimHash); each vector falls into the bucket of its sign pattern;
- a query bucket holds the SUM of the query's vectors in it, a document bucket the MEAN of the
  document's (so the inner product counts each query row once against one document "average"
  of its region); an empty document bucket is filled with the document vector whose sign
  pattern is nearest in Hamming distance (without it, a query row landing in an empty bucket
  would score 0 against a document that has a close sentence just across a hyperplane);
- each bucket is optionally projected to d_proj dimensions by a random +-1 matrix (an
  AMS-style sketch: inner products are preserved in expectation), then all buckets of all
  repetitions are concatenated: dim = R * 2^k_sim * d_proj.
The random draws come from a fixed seed, so the same parameters give the same encoding in every
process; `FdeParams.version` names them, and stored FDEs carry it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np


def _rows(x: np.ndarray | None) -> np.ndarray:
    if x is None:
        return np.zeros((0, 0), dtype=np.float32)
    x = np.asarray(x, dtype=np.float32)
    return x.reshape(1, -1) if x.ndim == 1 else x


def maxsim(query: np.ndarray, doc: np.ndarray, query_weights: np.ndarray | None = None) -> float:
    """Mean over query rows of the best cosine with any doc row (rows are L2-normalised);
    weighted mean when `query_weights` is given; 0.0 if either side has no rows."""
    q, d = _rows(query), _rows(doc)
    if q.shape[0] == 0 or d.shape[0] == 0:
        return 0.0
    best = (q @ d.T).max(axis=1)
    if query_weights is None:
        return float(best.mean())
    w = np.asarray(query_weights, dtype=np.float32)
    total = float(w.sum())
    return float((best * w).sum() / total) if total > 0 else 0.0


def maxsim_many(query: np.ndarray, docs: list[np.ndarray],
                query_weights: np.ndarray | None = None) -> np.ndarray:
    """MaxSim of one query against many documents, in one matrix product (float32 array)."""
    q = _rows(query)
    out = np.zeros(len(docs), dtype=np.float32)
    if q.shape[0] == 0 or not docs:
        return out
    sizes = [0 if d is None else _rows(d).shape[0] for d in docs]
    filled = [_rows(d) for d, n in zip(docs, sizes, strict=True) if n]
    if not filled:
        return out
    sims = q @ np.concatenate(filled).T  # (m, total rows)
    w = None if query_weights is None else np.asarray(query_weights, dtype=np.float32)
    start = 0
    for i, n in enumerate(sizes):
        if not n:
            continue
        best = sims[:, start:start + n].max(axis=1)
        start += n
        out[i] = best.mean() if w is None else (best * w).sum() / max(float(w.sum()), 1e-12)
    return out


def best_pairs(query: np.ndarray, doc: np.ndarray, top: int = 2) -> list[tuple[int, int, float]]:
    """The `top` strongest (query row, doc row, cosine) alignments, each query row at most once:
    the sentence pairs an explanation shows."""
    q, d = _rows(query), _rows(doc)
    if q.shape[0] == 0 or d.shape[0] == 0:
        return []
    sims = q @ d.T
    best_doc = sims.argmax(axis=1)
    best = sims[np.arange(q.shape[0]), best_doc]
    order = np.argsort(-best, kind="stable")[:top]
    return [(int(i), int(best_doc[i]), float(best[i])) for i in order]


# --- fixed-dimensional encodings ---------------------------------------------------------------

@dataclass(frozen=True)
class FdeParams:
    dim_in: int = 384
    k_sim: int = 3
    reps: int = 16
    d_proj: int = 16  # 0 = no projection (each bucket keeps dim_in dimensions)
    seed: int = 15

    @property
    def dimension(self) -> int:
        return self.reps * (2 ** self.k_sim) * (self.d_proj or self.dim_in)

    @property
    def version(self) -> str:
        return f"fde1-d{self.dim_in}-k{self.k_sim}-r{self.reps}-p{self.d_proj}-s{self.seed}"


# The shipped parameters (chosen by `manage.py bench fde`, docs/benchmarks.md): 2,048
# dimensions; recall of brute-force MaxSim's top-10 after reranking 200 candidates 0.91 /
# 0.79 / 0.77 (background / method / result) vs 0.83 / 0.68 / 0.71 at 1,024 (k3, 8 reps).
FDE_PARAMS = FdeParams()


def fde_params(dimension: int) -> FdeParams:
    """The shipped parameters for an encoder of `dimension` (the version names it)."""
    return replace(FDE_PARAMS, dim_in=int(dimension))


@functools.cache
def _draws(params: FdeParams) -> tuple[np.ndarray, np.ndarray | None]:
    """Hyperplanes (R, dim_in, k_sim) and projections (R, dim_in, d_proj) from the seed."""
    rng = np.random.default_rng(params.seed)
    planes = rng.standard_normal((params.reps, params.dim_in, params.k_sim)).astype(np.float32)
    if not params.d_proj:
        return planes, None
    signs = rng.integers(0, 2, size=(params.reps, params.dim_in, params.d_proj)) * 2 - 1
    return planes, (signs / np.sqrt(params.d_proj)).astype(np.float32)


def _encode(vectors: np.ndarray, params: FdeParams, *, document: bool) -> np.ndarray:
    x = _rows(vectors)
    buckets = 2 ** params.k_sim
    width = params.d_proj or params.dim_in
    out = np.zeros((params.reps, buckets, width), dtype=np.float32)
    if x.shape[0] == 0:
        return out.reshape(-1)
    if x.shape[1] != params.dim_in:
        raise ValueError(f"FDE of {params.version} expects {params.dim_in}-d rows, got {x.shape[1]}")
    planes, projections = _draws(params)
    powers = 1 << np.arange(params.k_sim)
    for r in range(params.reps):
        bits = (x @ planes[r]) > 0  # (n, k_sim)
        bucket = bits.astype(np.int64) @ powers
        projected = x if projections is None else x @ projections[r]
        sums = np.zeros((buckets, width), dtype=np.float32)
        np.add.at(sums, bucket, projected)
        if not document:
            out[r] = sums
            continue
        counts = np.bincount(bucket, minlength=buckets)
        filled = counts > 0
        sums[filled] /= counts[filled, None]
        if not filled.all():
            # Empty bucket: the row whose sign pattern is nearest (Hamming) to the bucket's.
            codes = ((np.arange(buckets)[:, None] & powers) > 0)  # (buckets, k_sim)
            hamming = (codes[:, None, :] != bits[None, :, :]).sum(axis=2)  # (buckets, n)
            nearest = hamming.argmin(axis=1)
            empty = ~filled
            sums[empty] = projected[nearest[empty]]
        out[r] = sums
    return out.reshape(-1)


def fde_query(vectors: np.ndarray, params: FdeParams = FDE_PARAMS) -> np.ndarray:
    """A query's FDE (per-bucket sums; empty buckets stay zero)."""
    return _encode(vectors, params, document=False)


def fde_document(vectors: np.ndarray, params: FdeParams = FDE_PARAMS) -> np.ndarray:
    """A document's FDE (per-bucket means; empty buckets filled from the nearest row)."""
    return _encode(vectors, params, document=True)
