"""Rerank an aspect vector's shortlist by what two papers visibly share: words and named concepts.

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
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings

from recommend import lexical, nearest_names
from search import concepts
from search.embedders import paper_text
from search.models import Paper
from search.selectors import active_space, concept_weights, stored_vectors


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


@dataclass
class Reranked:
    ranked: list[tuple[int, float]]  # (paper id, vector cosine), best first
    words: dict[int, dict] = field(default_factory=dict)  # id -> {similarity, shared}
    debug: dict = field(default_factory=dict)


def rerank(*, anchor: Paper, shortlist: Sequence[tuple[int, float]], aspect: str, k: int) -> Reranked:
    """The best k of the shortlist [(id, vector cosine)] by the fused score; the shortlist's
    order (cut to k) when no signal has a weight or a fit."""
    w = weights(aspect)
    fitted = lexical.current() if w["words"] > 0 else None
    use_concepts = w["concepts"] > 0 and bool(w["kinds"])
    if not shortlist or (fitted is None and not use_concepts):
        return Reranked(list(shortlist[:k]))
    ids = [pid for pid, _ in shortlist]
    # the abstracts only when the words are weighed: they are most of what is read
    fields = ("title", "abstract", "concepts") if fitted is not None else ("concepts",)
    rows = {row["pk"]: row for row in Paper.objects.filter(pk__in=ids).values("pk", *fields)}
    out = Reranked([], debug={"shortlist": len(ids), "weights": w})
    lex: np.ndarray | None = None
    shared_terms: list[list[str]] = []
    named, near_cos = None, None
    if fitted is not None:
        lex, shared_terms = lexical.similarities(
            fitted, paper_text(anchor.title, anchor.abstract),
            [paper_text(rows[pid]["title"], rows[pid]["abstract"]) if pid in rows else ""
             for pid in ids])
        out.debug["lexical"] = fitted.version
    if use_concepts:
        idf, kinds = concept_weights().idf, tuple(w["kinds"])
        mine = concepts.weighted(anchor.concepts, idf, kinds)
        theirs = [concepts.weighted(rows[pid]["concepts"] if pid in rows else [], idf, kinds)
                  for pid in ids]
        named = np.asarray([concepts.cosine(mine, t) for t in theirs], dtype=np.float64)
        if w["nearest"] > 0:
            near = nearest_weights([anchor.pk, *ids])
            if anchor.pk in near:
                near_cos = np.asarray([float(near[pid] @ near[anchor.pk]) if pid in near else 0.0
                                       for pid in ids])
    fused = fused_scores(np.asarray([cos for _, cos in shortlist], dtype=np.float64),
                         words=lex, named=named, nearest=near_cos, w_words=w["words"],
                         w_concepts=w["concepts"], w_nearest=w["nearest"])
    cosine = dict(shortlist)
    for i in np.lexsort((np.asarray(ids), -fused))[:k]:
        out.ranked.append((ids[i], cosine[ids[i]]))
        if lex is not None:  # the words were weighed (fitted is not None)
            out.words[ids[i]] = {"similarity": round(float(lex[i]), 4), "shared": shared_terms[i]}
    return out
