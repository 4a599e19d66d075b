"""Facets as the reader thinks of them: papers alike in their *background* (the problem),
their *method* or their *result*, matched sentence by sentence.

A facet is not an embedding space: it is ranked on the generic space (its ranking is the
floor, recommend.ordering) plus, on the shortlist, the facet's MaxSim between the query's
facet sentences and each candidate's (search.multivector, over the sentences and rhetorical
roles search/ stores: search.sentence_selectors) and the signals of the aspect space that
stands closest to it (background -> task, method -> method, result -> dataset). How much each
adds is settings.FACET_WEIGHTS, chosen on the validation split of our faceted dev set
(`manage.py bench aspects-facets`, docs/faceted-dev-set.md): a signal not confidently better
than the generic order there gets 0, so a facet can only tie or beat "similar".

The sentence store, MaxSim and the FDE retrieval are search/'s (search.sentence_selectors,
search.multivector); a paper whose sentences are not stored yet is neutral (z = 0) in MaxSim
and has no matched sentences, so it still gets its generic-floored answer.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from django.conf import settings

from recommend import rerank
from search.multivector import best_pairs, maxsim_many
from search.roles import FACETS as ROLE_FACETS
from search.sentence_selectors import PaperSentenceSet, facet_candidates, paper_sentences

FACETS = tuple(ROLE_FACETS)  # background, method, result (search.roles: their roles)
# the aspect space whose vector a facet may borrow (when validation says it helps)
FACET_ASPECT = {"background": "task", "method": "method", "result": "dataset"}
NEGATIVE_WEIGHT = 0.7  # as recommend.selectors': a negative's pull on MaxSim
PAIRS_SHOWN = 2  # matched sentence pairs per result in the explanation


def is_facet(name: str) -> bool:
    return name in FACETS


def weights(facet: str) -> dict[str, float]:
    """{"maxsim": w, "aspect": w}: the weights of the facet's signals in z units of the
    generic ranking's score (settings.FACET_WEIGHTS; 0 = that signal is off)."""
    return {"maxsim": 0.0, "aspect": 0.0, **settings.FACET_WEIGHTS.get(facet, {})}


def _facet_matrix(sentence_set: PaperSentenceSet, facet: str) -> np.ndarray:
    return np.asarray(sentence_set.facet_vectors(facet), dtype=np.float32)


def _merged_query(sets: dict[int, PaperSentenceSet], ids: Sequence[int], facet: str) -> np.ndarray | None:
    """The facet sentences of several example papers as one query (MaxSim's mean over query
    rows then weighs every example by its number of facet sentences)."""
    parts = [_facet_matrix(sets[pid], facet) for pid in ids if pid in sets]
    parts = [p for p in parts if len(p)]
    return np.vstack(parts) if parts else None


def maxsim_scores(facet: str, positive: Sequence[int], negative: Sequence[int],
                  pool: Sequence[int]) -> np.ndarray | None:
    """(len(pool),) MaxSim of the positives' facet sentences with each candidate's facet
    sentences - NEGATIVE_WEIGHT * the largest with a negative's; candidates without stored
    sentences get the pool's mean (no evidence either way: 0 after the z-score). None when
    no positive has sentences."""
    if not pool:
        return None
    sets = paper_sentences([*positive, *negative, *pool])
    query = _merged_query(sets, positive, facet)
    if query is None:
        return None
    present = [pid for pid in pool if pid in sets]
    if not present:
        return None
    docs = [_facet_matrix(sets[pid], facet) for pid in present]
    scores = np.asarray(maxsim_many(query, docs), dtype=np.float64)
    negatives = [n for n in (_merged_query(sets, [pid], facet) for pid in negative) if n is not None]
    if negatives:
        against = np.max([np.asarray(maxsim_many(n, docs), dtype=np.float64) for n in negatives], axis=0)
        scores = scores - NEGATIVE_WEIGHT * against
    by_id = dict(zip(present, scores, strict=True))
    fill = float(np.mean(scores))
    return np.asarray([by_id.get(pid, fill) for pid in pool], dtype=np.float64)


def facet_signal(w: dict[str, float], share: float, maxsim: np.ndarray | None,
                 aspect_cos: np.ndarray | None) -> np.ndarray | None:
    """The facet's term of the fused score: share * (w_maxsim * z(MaxSim) + w_aspect *
    z(aspect cosine)) (w: weights()), z over the shortlist, or over each row of a matrix;
    None when it adds nothing. Pure, so that the evaluation (bench.aspects_facets) scores
    with this very function."""
    out = None
    for values, weight in ((maxsim, w["maxsim"]), (aspect_cos, w["aspect"])):
        if values is not None and weight > 0:
            term = share * weight * rerank.zscore(np.asarray(values, dtype=np.float64))
            out = term if out is None else out + term
    return out


def matched_sentences(facet: str, anchor_id: int, result_ids: Sequence[int]) -> dict[int, dict]:
    """Per result: the best matching pairs of the anchor's facet sentences with the result's
    (texts, roles, cosine), and whether either side fell back to all its sentences (no
    sentence of that facet). Empty when the anchor's sentences are not stored yet."""
    sets = paper_sentences([anchor_id, *result_ids])
    mine = sets.get(anchor_id)
    if mine is None:
        return {}
    q_rows = np.asarray(mine.facet_rows(facet))
    out = {}
    for pid in result_ids:
        theirs = sets.get(pid)
        if theirs is None or not len(q_rows):
            continue
        d_rows = np.asarray(theirs.facet_rows(facet))
        if not len(d_rows):
            continue
        pairs = best_pairs(mine.vectors[q_rows], theirs.vectors[d_rows], top=PAIRS_SHOWN)
        out[pid] = {
            "facet": facet,
            "fallback": {"query": mine.facet_fallback(facet), "result": theirs.facet_fallback(facet)},
            "pairs": [{"query": mine.texts[int(q_rows[qi])], "query_role": mine.roles[int(q_rows[qi])],
                       "result": theirs.texts[int(d_rows[di])], "result_role": theirs.roles[int(d_rows[di])],
                       "cosine": round(float(cos), 4)} for qi, di, cos in pairs],
        }
    return out


def candidates(facet: str, positive: Sequence[int], k: int, filters, exclude: Sequence[int]) -> list[int]:
    """The facet's own retrieval (FDE walk + exact MaxSim, search/) for a single example;
    empty when it has several or its sentences are not stored yet."""
    if len(positive) != 1:
        return []
    sets = paper_sentences(list(positive))
    if positive[0] not in sets:
        return []
    return list(facet_candidates(facet, sets[positive[0]], k, filters, exclude_ids=exclude))
