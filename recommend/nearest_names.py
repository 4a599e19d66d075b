"""The task (or dataset) names a paper is about without writing them.

40% of SciREX papers never name one of their tasks in the abstract ("we propose a residual
learning framework ..."); the names found in the text (search.concepts) miss them. Here a
paper's nearest names are the NEAREST_TOP names of the dictionary whose embedding is closest
to the paper's generic embedding (cosine at least NEAREST_FLOOR, weighed by how far above it).
Two papers compare by the cosine of these weights: a second, softer names term of the rerank
and of recommend() (recommend.rerank.nearest_weights; chosen and weighed on validation by
bench/aspects_concepts.py, kinds "nearλ"; docs/benchmarks.md "Nearest names"), computed on the
fly for the shortlist from the stored generic vectors, so nothing is stored per paper (the
names' embeddings are cached on disk per model and dictionary version).
"""

from __future__ import annotations

import functools
import os
import re
import threading
from pathlib import Path

import numpy as np

from search import concepts
from search.embedders import get_encoder
from search.vectors import l2_normalise

NEAREST_TOP = 10  # on validation (worst-dataset ratio, --quick): 3 / 5 names 1.24, 10 1.26-1.27, 20 1.26
NEAREST_FLOOR = 0.2  # with 10 names: floor 0.1 1.26, 0.2 1.27, 0.3 1.26
_lock = threading.Lock()


# Name embeddings computed once are kept here (git-ignored), so a new process loads them in
# milliseconds instead of encoding ~5k names again (~3.5 s with the int8 encoder).
CACHE_DIR = Path(__file__).resolve().parents[1] / "var" / "cache" / "nearest-names"


@functools.lru_cache(maxsize=4)
def _name_vectors(kind: str, model_name: str, dictionary_version: str) -> tuple[list[str], np.ndarray]:
    """The dictionary's concepts of `kind` and their embeddings (l2-normalised), once per
    process, dictionary version and model: from the disk cache, or encoded and cached."""
    dictionary = concepts.shipped_dictionary()
    names = sorted({c for table in (dictionary.exact, dictionary.folded) for found in table.values()
                    for c in found if concepts.kind_of(c) == kind})
    encoder = get_encoder(model_name)
    # the encoder's own name and version (an int8 export is not its torch source here)
    key = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{encoder.name}@{encoder.version}-{kind}-{dictionary_version}")
    path = CACHE_DIR / f"{key}.npy"
    try:
        vectors = np.load(path)
        if vectors.shape[0] == len(names):
            return names, vectors
    except (OSError, ValueError):
        pass  # not cached yet (or unreadable): encode
    vectors = np.asarray(encoder.encode([concepts.name_of(c) for c in names]), dtype=np.float32)
    vectors = l2_normalise(vectors)
    try:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.partial.npy")
        np.save(partial, vectors)
        os.replace(partial, path)  # readers never see half a file
    except OSError:
        pass  # a read-only checkout: keep them in memory only
    return names, vectors


def name_vectors(kind: str, model_name: str) -> tuple[list[str], np.ndarray]:
    with _lock:  # one computation per key even when requests arrive together
        return _name_vectors(kind, model_name, concepts.shipped_dictionary().version)


def weights(paper_vectors: np.ndarray, kind: str, model_name: str) -> np.ndarray:
    """(papers x names) nearest-name weights, rows l2-normalised (all zero: no name near)."""
    _, names = name_vectors(kind, model_name)
    scores = np.asarray(paper_vectors, dtype=np.float32) @ names.T
    # a partial sort (a full one of ~5k names per paper was most of the rerank's time)
    top = np.argpartition(-scores, NEAREST_TOP, axis=1)[:, :NEAREST_TOP]
    rows = np.arange(len(scores))[:, None]
    out = np.zeros_like(scores)
    out[rows, top] = np.maximum(scores[rows, top] - NEAREST_FLOOR, 0.0)
    return l2_normalise(out)


def nearest(paper_vectors: np.ndarray, kind: str, model_name: str) -> list[list[str]]:
    """Each paper's nearest names, closest first (for explanations)."""
    names, _ = name_vectors(kind, model_name)
    out = []
    for row in weights(paper_vectors, kind, model_name):
        found = np.flatnonzero(row)
        out.append([names[i] for i in found[np.argsort(-row[found], kind="stable")]])
    return out
