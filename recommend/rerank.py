"""The rerank's weights and formula: an aspect vector's shortlist reordered by what the papers visibly
share, words and named concepts (recommend.ordering applies it to "similar" and "recommend").

score = z(vector cosine) + w_words * z(tf-idf cosine) + w_concepts * concept cosine, z over the
shortlist (the top RERANK_SHORTLIST papers by the vector); the concept cosine is used as it is
(in [0, 1]: sharing every named concept adds w_concepts standard deviations of the vector's
score; a z-score of such sparse values would let one shared name jump by 10). The weights per
aspect come from validation splits (settings.RERANK_WEIGHTS; docs/benchmarks.md "Named
concepts" and "Nearest names"). The words are recommend.lexical's; the concepts are the task and dataset names
both papers mention (search.concepts), weighted by how rare they are in the corpus, plus, with
the weight "nearest", the cosine of the task names nearest both papers' generic embeddings
(recommend.nearest_names: the task a paper is about without naming it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from django.conf import settings

from recommend import nearest_names
from search import concepts
from search.selectors import active_space, stored_vectors


def weights(aspect: str) -> dict:
    """{"words": w, "concepts": w, "kinds": concept kinds compared, "nearest": weight of the
    nearest names inside the concept term} of an aspect."""
    table = settings.RERANK_WEIGHTS
    return {"words": 0.0, "concepts": 0.0, "kinds": concepts.KINDS, "nearest": 0.0,
            **table.get(aspect, table.get("generic", {}))}


def nearest_weights(ids: Sequence[int]) -> dict[int, np.ndarray]:
    """{paper id: the weights of its nearest task names} (recommend.nearest_names) from the
    stored generic vectors; papers without one (not embedded yet, or no generic space) are
    left out. Task names serve the dataset aspect too (papers on one dataset share its task):
    nearest *dataset* names were measured and never chosen (short, opaque names embed badly)."""
    space = active_space("generic")
    if space is None:
        return {}
    vectors = stored_vectors(space, ids)
    if not vectors:
        return {}
    found = list(vectors)
    rows = nearest_names.weights(np.vstack([vectors[pid] for pid in found]), "task", space.model_name)
    return dict(zip(found, rows, strict=True))


def zscore(values: np.ndarray) -> np.ndarray:
    """(values - mean) / standard deviation along the last axis (one shortlist, or one per row
    of a matrix); zeros where all values are equal."""
    values = np.asarray(values)  # its own dtype, as before the matrix form
    spread = values.std(axis=-1, keepdims=True)
    centred = values - values.mean(axis=-1, keepdims=True)
    return np.divide(centred, spread, out=np.zeros_like(centred), where=spread > 0)


def fused_scores(vector: np.ndarray, *, words: np.ndarray | None = None, named: np.ndarray | None = None,
                 nearest: np.ndarray | None = None, w_words: float = 0.0, w_concepts: float = 0.0,
                 w_nearest: float = 0.0) -> np.ndarray:
    """The rerank's score of a shortlist (the last axis; a matrix scores one shortlist per row):
    z(vector cosine) + w_words * z(tf-idf cosine) + w_concepts * (found names' cosine +
    w_nearest * nearest names' cosine). A signal that is None or has no weight adds nothing.
    Pure (arrays in, scores out), so the held-out evaluation (bench aspects) scores with this
    very function."""
    fused = zscore(vector)
    if words is not None and w_words:
        fused = fused + w_words * zscore(words)
    if named is not None and w_concepts:
        names = np.asarray(named, dtype=np.float64)
        if nearest is not None and w_nearest:
            names = names + w_nearest * np.asarray(nearest, dtype=np.float64)
        fused = fused + w_concepts * names
    return fused
