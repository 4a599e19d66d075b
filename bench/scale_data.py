"""Data for the scale benchmarks (`manage.py bench scale-load`, `filtered`, `precision`,
`graph`): the real arxiv-daily corpus with its reference vectors, and synthetic papers drawn
to follow its distribution.

Real corpus: /work/shared/data/embeddings/arxiv-minilm-l6-v2.npz (ids + float16 vectors) joined
with the metadata of /work/shared/data/arxiv-daily/*.jsonl.gz (deduplicated on id; the first
day a paper appears is its published / first-seen date).

Synthetic papers (to reach >= 1M vectors): pick a random real paper and add Gaussian noise whose
*shape* is the diagonal covariance of the paper's k-means cluster and whose *size* is the
distance from that paper to its own nearest real neighbour, then renormalise. So a synthetic
vector sits about as far from its source as real neighbours sit from each other, stretched
along the directions in which that region of the space actually varies (a spherical noise in
384-d would push every synthetic vector equally far from everything, which makes HNSW look
better or worse than it is). Metadata: the source's categories, a date jittered by up to
+-30 days (clipped to the real range), and authors drawn from the real author pool weighted by
how often each appears (prolific authors stay prolific, so author filters keep their shape).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np

DATA = Path("/work/shared/data")
EMBEDDINGS = DATA / "embeddings" / "arxiv-minilm-l6-v2.npz"
DAILY = DATA / "arxiv-daily"
CLUSTERS = 256  # k-means clusters for the per-region noise shape
DATE_JITTER_DAYS = 30


@dataclass
class RealCorpus:
    ids: np.ndarray  # arXiv ids (str)
    vectors: np.ndarray  # float32 (n, dim), the float16 reference values widened
    titles: list[str]
    abstracts: list[str]
    authors: list[list[str]]
    categories: list[list[str]]
    dates: list[date]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class SyntheticChunk:
    vectors: np.ndarray  # float32 (m, dim), unit length
    sources: np.ndarray  # index of the real paper each one was drawn from
    dates: list[date]
    authors: list[list[str]]


def load_real() -> RealCorpus:
    """The 74,728 real papers in the order of the .npz, with their metadata."""
    npz = np.load(EMBEDDINGS)
    ids = npz["ids"]
    meta: dict[str, tuple[dict, date]] = {}
    for path in sorted(DAILY.glob("*.jsonl.gz")):  # file names are dates: sorted = first-seen
        day = date.fromisoformat(path.name.split(".")[0])
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                meta.setdefault(row["id"], (row, day))
    missing = [i for i in ids if i not in meta]
    if missing:
        raise ValueError(f"{len(missing)} embedded ids have no arxiv-daily row, e.g. {missing[:3]}")
    rows = [meta[i] for i in ids]
    return RealCorpus(
        ids=ids, vectors=npz["vectors"].astype(np.float32),
        titles=[r["title"] for r, _ in rows], abstracts=[r["summary"] for r, _ in rows],
        authors=[list(r.get("authors") or []) for r, _ in rows],
        categories=[_categories(r) for r, _ in rows],
        dates=[d for _, d in rows],
    )


def _categories(row: dict) -> list[str]:
    """Whitespace-collapsed, cut to the column's 64 characters (a few rows carry long ACM/MSC
    descriptions as 'categories'), deduplicated."""
    cleaned = (" ".join(str(c).split())[:64] for c in row.get("categories") or [])
    return list(dict.fromkeys(c for c in cleaned if c))


def held_out(n_total: int, n_queries: int, seed: int) -> np.ndarray:
    """Indices of the real papers kept out of the index and used as queries."""
    return np.sort(np.random.default_rng(seed).choice(n_total, n_queries, replace=False))


class Synthesizer:
    """Draws synthetic papers around the real ones (see the module docstring)."""

    def __init__(self, real: RealCorpus, pool: np.ndarray, seed: int) -> None:
        import faiss  # only needed here (and by the peer-engine benchmark)

        self.real, self.pool = real, pool  # pool: indices of real papers allowed as sources
        self.rng = np.random.default_rng(seed)
        vectors = np.ascontiguousarray(real.vectors[pool])
        kmeans = faiss.Kmeans(vectors.shape[1], CLUSTERS, niter=20, seed=seed, verbose=False)
        kmeans.train(vectors)
        _, assign = kmeans.index.search(vectors, 1)
        self.cluster = assign[:, 0]
        # Per-cluster noise shape: the residual std per dimension, scaled to unit length.
        shape = np.zeros((CLUSTERS, vectors.shape[1]), np.float32)
        for c in range(CLUSTERS):
            members = vectors[self.cluster == c]
            if len(members) > 1:
                shape[c] = (members - kmeans.centroids[c]).std(axis=0)
        shape /= np.maximum(np.linalg.norm(shape, axis=1, keepdims=True), 1e-9)
        self.shape = shape
        # Per-paper noise size: distance to its nearest real neighbour (excluding itself).
        flat = faiss.IndexFlatIP(vectors.shape[1])
        flat.add(vectors)
        sims, _ = flat.search(vectors, 2)
        self.nn_distance = np.sqrt(np.maximum(0.0, 2.0 - 2.0 * sims[:, 1])).astype(np.float32)
        # Author pool with frequencies; date range.
        names, counts = np.unique(
            np.array([a for i in pool for a in real.authors[i]], dtype=object), return_counts=True)
        self.author_names, self.author_p = names, counts / counts.sum()
        days = [real.dates[i] for i in pool]
        self.first_day, self.last_day = min(days), max(days)

    def chunks(self, n: int, chunk: int = 20_000) -> Iterator[SyntheticChunk]:
        for start in range(0, n, chunk):
            yield self._draw(min(chunk, n - start))

    def _draw(self, m: int) -> SyntheticChunk:
        rng = self.rng
        pick = rng.integers(0, len(self.pool), m)  # positions within the pool
        sources = self.pool[pick]
        base = self.real.vectors[sources]
        noise = rng.standard_normal(base.shape).astype(np.float32) * self.shape[self.cluster[pick]]
        vectors = base + noise * self.nn_distance[pick, None]
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        jitter = rng.integers(-DATE_JITTER_DAYS, DATE_JITTER_DAYS + 1, m)
        dates = [min(self.last_day, max(self.first_day, self.real.dates[s] + timedelta(int(j))))
                 for s, j in zip(sources, jitter, strict=True)]
        n_authors = [max(1, len(self.real.authors[s])) for s in sources]
        drawn = rng.choice(len(self.author_names), sum(n_authors), p=self.author_p)
        authors, at = [], 0
        for k in n_authors:
            authors.append(list(dict.fromkeys(self.author_names[drawn[at:at + k]])))
            at += k
        return SyntheticChunk(vectors=vectors.astype(np.float32), sources=sources,
                              dates=dates, authors=authors)


# --- pgvector text literals -------------------------------------------------------------------

def vector_literals(vectors: np.ndarray) -> list[str]:
    """'[x,y,...]' for each row. 7 significant digits keep float32 to ~1e-7, more than HNSW or
    the float16 source can tell apart; the same literal serves vector and halfvec (Postgres
    rounds it to half precision exactly as numpy's astype(float16) would)."""
    fmt = "[" + ",".join(["%.7g"] * vectors.shape[1]) + "]"
    return [fmt % tuple(row) for row in vectors.tolist()]


def bit_literals(vectors: np.ndarray) -> list[str]:
    """'0101...' sign bits for each row (the `embedding_bit` copy)."""
    digits = ((vectors > 0).astype(np.uint8) + ord("0")).tobytes().decode("ascii")
    dim = vectors.shape[1]
    return [digits[i * dim:(i + 1) * dim] for i in range(len(vectors))]
