"""The ternary code: a compact copy of each vector, richer than its sign bits.

Each dimension is cut into three levels at that dimension's tertiles over the space's vectors
(two thresholds per dimension, learned from the corpus), and a level is written as two
"thermometer" bits: below the first threshold 00, between 10, above both 11. The Hamming
distance between two such codes is then exactly the L1 distance between their level vectors,
so pgvector's bit HNSW index (Hamming) ranks by a 3-level quantisation instead of 1 bit/dim.

Measured on the 74.7k reference vectors (exhaustive Hamming, then float rerank, recall@10):
sign bits need 40 candidates per result for 0.98, the ternary code 10 (docs/benchmarks.md,
`manage.py bench compact-codes`). Two bits per dimension: 96 bytes for a 384-d vector.

The thresholds are a learned projection: fitted once per space (search.services.
space_build_code), stored on the space with a version derived from their values.
"""

from __future__ import annotations

import hashlib

import numpy as np
from pgvector import Bit

LEVELS = 3  # levels per dimension; LEVELS - 1 bits per dimension
FIT_SAMPLE = 50_000  # vectors the tertiles are estimated from (more changes nothing visible)


def fit_thresholds(vectors: np.ndarray, levels: int = LEVELS) -> np.ndarray:
    """Per-dimension quantiles cutting each dimension into `levels` equally full levels:
    shape (levels - 1, dim)."""
    if len(vectors) == 0:
        raise ValueError("cannot fit thresholds on zero vectors")
    cuts = np.linspace(0, 1, levels + 1)[1:-1]
    return np.quantile(np.asarray(vectors, dtype=np.float32), cuts, axis=0).astype(np.float32)


def encode(vectors: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Thermometer bits, shape (n, dim * (levels - 1)): block j holds `x > thresholds[j]`."""
    vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    return np.concatenate([vectors > t for t in np.asarray(thresholds, dtype=np.float32)],
                          axis=1)


def bit_literal(vector: np.ndarray, thresholds: np.ndarray) -> str:
    """One vector's code as the text literal of pgvector's bit type."""
    return Bit(encode(vector, thresholds)[0]).to_text()


def code_bits(dimension: int, thresholds) -> int:
    """Length of the code of a `dimension`-d vector."""
    return int(dimension) * len(thresholds)


def version(thresholds: np.ndarray) -> str:
    """A short, stable name for a set of thresholds (stored next to them on the space)."""
    data = np.asarray(thresholds, dtype=np.float32).round(6).tobytes()
    return hashlib.sha256(data).hexdigest()[:10]
