"""The task (or dataset) names a paper is about without writing them.

40% of SciREX papers never name one of their tasks in the abstract ("we propose a residual
learning framework ..."); the names found in the text (search.concepts) miss them. Here a
paper's nearest names are the NEAREST_TOP names of the dictionary whose embedding is closest
to the paper's generic embedding (cosine at least NEAREST_FLOOR, weighed by how far above it).
Two papers compare by the cosine of these weights: a second, softer names term of the rerank
and of recommend() (recommend.rerank.nearest_weights; chosen and weighed on validation by
`manage.py bench aspects`, kinds "nearλ"; docs/benchmarks.md "Nearest names"), computed on the
fly for the shortlist from the stored generic vectors, so nothing is stored per paper.

The names' embeddings (~4,700 task names) are built ahead of time, never in a request:
`build()` encodes them into var/cache/nearest-names/ (one file per encoder, kind and
dictionary version), called by the Celery task `recommend.tasks.build_nearest_names` (beat
entry "build-nearest-names"), by `manage.py build_nearest_names` and at image build
(docker/Dockerfile). Until they exist, requests read them as "no name near": `name_vectors()`
returns None, `weights()` all-zero rows and `nearest()` empty lists.
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
# The kinds requests read (rerank and explanations use the task names only); what the task,
# the command and the image build make.
KINDS = ("task",)

# Git-ignored; a new process loads a built file in milliseconds.
CACHE_DIR = Path(__file__).resolve().parents[1] / "var" / "cache" / "nearest-names"

_lock = threading.Lock()
# Loaded files, per path. Only hits are kept: a miss is looked up on disk again next time,
# so a web process picks the file up as soon as the worker has written it.
_loaded: dict[Path, tuple[list[str], np.ndarray]] = {}


def names_of_kind(kind: str) -> list[str]:
    """The dictionary's concepts of `kind`, sorted: the rows of the name embeddings."""
    return list(_names_of_kind(kind, concepts.shipped_dictionary().version))


@functools.lru_cache(maxsize=8)
def _names_of_kind(kind: str, dictionary_version: str) -> tuple[str, ...]:
    dictionary = concepts.shipped_dictionary()
    return tuple(sorted({c for table in (dictionary.exact, dictionary.folded)
                         for found in table.values() for c in found if concepts.kind_of(c) == kind}))


def cache_path(kind: str, model_name: str) -> Path:
    """Where the names' embeddings of this encoder, kind and dictionary version live."""
    encoder = get_encoder(model_name)  # loads the model (once per process); encodes nothing
    version = concepts.shipped_dictionary().version
    # the encoder's own name and version (an int8 export is not its torch source here)
    key = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{encoder.name}@{encoder.version}-{kind}-{version}")
    return CACHE_DIR / f"{key}.npy"


def _read(path: Path, expected_rows: int) -> np.ndarray | None:
    try:
        vectors = np.load(path)
    except (OSError, ValueError):
        return None  # not built (or unreadable)
    return vectors if vectors.shape[0] == expected_rows else None


def build(kind: str, model_name: str) -> Path:
    """Encode the names of `kind` with the model and write them to the cache; nothing to do
    when they are there. The only code that encodes names: workers, commands, image build."""
    names = names_of_kind(kind)
    path = cache_path(kind, model_name)
    if _read(path, len(names)) is not None:
        return path
    vectors = l2_normalise(np.asarray(
        get_encoder(model_name).encode([concepts.name_of(c) for c in names]), dtype=np.float32))
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial.npy")
    np.save(partial, vectors)
    os.replace(partial, path)  # readers never see half a file
    return path


def is_built(kind: str, model_name: str) -> bool:
    return name_vectors(kind, model_name) is not None


def name_vectors(kind: str, model_name: str) -> tuple[list[str], np.ndarray] | None:
    """The names of `kind` and their embeddings (l2-normalised rows), or None when they have
    not been built yet (see the module's doc). Never encodes."""
    path = cache_path(kind, model_name)
    with _lock:
        if path in _loaded:
            return _loaded[path]
        names = names_of_kind(kind)
        vectors = _read(path, len(names))
        if vectors is None:
            return None
        _loaded[path] = (names, vectors)
        return _loaded[path]


def forget_loaded() -> None:
    """Drop what this process has loaded (as a fresh process would start)."""
    with _lock:
        _loaded.clear()


def weights(paper_vectors: np.ndarray, kind: str, model_name: str) -> np.ndarray:
    """(papers x names) nearest-name weights, rows l2-normalised (all zero: no name near, and
    every row is all zero while the names' embeddings are not built)."""
    built = name_vectors(kind, model_name)
    if built is None:
        return np.zeros((len(paper_vectors), len(names_of_kind(kind))), dtype=np.float32)
    _, names = built
    scores = np.asarray(paper_vectors, dtype=np.float32) @ names.T
    # a partial sort (a full one of ~5k names per paper was most of the rerank's time)
    top = np.argpartition(-scores, NEAREST_TOP, axis=1)[:, :NEAREST_TOP]
    rows = np.arange(len(scores))[:, None]
    out = np.zeros_like(scores)
    out[rows, top] = np.maximum(scores[rows, top] - NEAREST_FLOOR, 0.0)
    return l2_normalise(out)


def nearest(paper_vectors: np.ndarray, kind: str, model_name: str) -> list[list[str]]:
    """Each paper's nearest names, closest first (for explanations); empty lists while the
    names' embeddings are not built."""
    built = name_vectors(kind, model_name)
    if built is None:
        return [[] for _ in range(len(paper_vectors))]
    names, out = built[0], []
    for row in weights(paper_vectors, kind, model_name):
        found = np.flatnonzero(row)
        out.append([names[i] for i in found[np.argsort(-row[found], kind="stable")]])
    return out
