"""Aspect similarity and recommendations from examples: the signals and the explanations.

Every aspect (generic, task, method, dataset, ...) is an embedding space; a paper's aspect
vector is computed by the workers (search.services.papers_embed). Here we only read vectors
and names, score them against examples, and explain a result; the one ranking that "similar"
and "recommend" both serve is recommend.ordering's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from django.db import connection

from recommend import nearest_names, rerank
from recommend.params import RecommendRequest
from search import catalogue, concepts
from search.models import EmbeddingSpace, Paper
from search.selectors import (
    LISTED_FIELDS,
    ScoredPaper,
    concept_weights,
    vector_from_send,
)
from search.vectors import l2_normalise

LABEL_FIELDS = {"task": "tasks", "method": "methods", "dataset": "datasets"}
# What a similar / recommend result shows and its explanation reads (the shared labels)
EXPLAINED_FIELDS = (*LISTED_FIELDS, *LABEL_FIELDS.values())
# How strongly a negative example pushes its neighbours down (Rocchio-style).
NEGATIVE_WEIGHT = 0.7


def active_aspects() -> dict[str, EmbeddingSpace]:
    """{aspect: active space}, kept per process for a moment (search.catalogue)."""
    return dict(catalogue.active_spaces())


def vectors_and_evidence(spaces: dict[str, EmbeddingSpace], paper_ids: Sequence[int],
                         ) -> tuple[dict[str, dict[int, np.ndarray]], dict[str, dict[int, list[str]]]]:
    """Every space's stored vectors and evidence sentences in one statement (an explanation
    read two per aspect, 7 in all). Per aspect {paper id: current vector} (stale ones left
    out, as search.selectors.stored_vectors does) and {paper id: evidence} (every row)."""
    by_id = {int(space.pk): aspect for aspect, space in spaces.items()}
    vectors: dict[str, dict[int, np.ndarray]] = {aspect: {} for aspect in spaces}
    evidence: dict[str, dict[int, list[str]]] = {aspect: {} for aspect in spaces}
    if not paper_ids or not by_id:
        return vectors, evidence
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT e.space_id, e.paper_id, CASE WHEN p.content_hash = e.content_hash "
            "THEN vector_send(e.embedding) END, e.evidence FROM search_paperembedding e "
            "JOIN search_paper p ON p.id = e.paper_id "
            "WHERE e.space_id = ANY(%s) AND e.paper_id = ANY(%s)", [list(by_id), list(paper_ids)])
        for sid, pid, raw, ev in cursor.fetchall():
            aspect = by_id[int(sid)]
            if raw is not None:
                vectors[aspect][int(pid)] = vector_from_send(raw)
            evidence[aspect][int(pid)] = json.loads(ev) if isinstance(ev, str) else ev or []
    return vectors, evidence


# --- explanations -------------------------------------------------------------------------------

def explain(
    *, anchors: Sequence[Paper], results: list[ScoredPaper], spaces: dict[str, EmbeddingSpace],
) -> None:
    """Attach an `explanation` to each result: per-aspect similarity to the anchor paper(s),
    labels shared with them, and the sentences each aspect vector was built from."""
    if not results:
        return
    anchor_ids = [p.pk for p in anchors]
    result_ids = [r.paper.pk for r in results]
    per_aspect: dict[str, dict[int, float]] = {}
    evidence: dict[str, dict[int, list[str]]] = {}
    about: dict[int, list[str]] = {}
    all_vectors, all_evidence = vectors_and_evidence(spaces, anchor_ids + result_ids)
    for aspect, space in spaces.items():
        vectors = all_vectors[aspect]
        anchor_vecs = [vectors[i] for i in anchor_ids if i in vectors]
        if not anchor_vecs:
            continue
        centre = l2_normalise(np.mean(anchor_vecs, axis=0))
        if aspect == "generic":
            about = _both_about(centre, vectors, result_ids, space.model_name)
        per_aspect[aspect] = {pid: round(float(np.dot(centre, vectors[pid])), 4)
                              for pid in result_ids if pid in vectors}
        if aspect != "generic":
            evidence[aspect] = all_evidence[aspect]
    idf = concept_weights().idf
    anchor_concepts = concepts.weighted(sorted({c for a in anchors for c in a.concepts}), idf)
    for item in results:
        pid = item.paper.pk
        found = concepts.shared(anchor_concepts, concepts.weighted(item.paper.concepts, idf), limit=8)
        shared_concepts = {kind: [concepts.name_of(c) for c in found if concepts.kind_of(c) == kind]
                           for kind in concepts.KINDS}
        shared = {}
        for aspect, column in LABEL_FIELDS.items():
            common = sorted(set(getattr(item.paper, column)).intersection(
                *[set(getattr(a, column)) for a in anchors[:1]])) if anchors else []
            if common:
                shared[aspect] = common
        sentences = {}
        for aspect, by_paper in evidence.items():
            if by_paper.get(pid):
                sentences[aspect] = {
                    "result": by_paper[pid],
                    "query": by_paper.get(anchor_ids[0], []) if len(anchor_ids) == 1 else [],
                }
        item.details["explanation"] = {
            "similarity": {a: scores[pid] for a, scores in per_aspect.items() if pid in scores},
            "shared_labels": shared,
            # task / dataset names both mention, rarest first (search.concepts)
            "shared_concepts": {kind: names for kind, names in shared_concepts.items() if names},
            # task names nearest both (recommend.nearest_names): inferred, not written
            "both_about": {"task": about[pid]} if about.get(pid) else {},
            "sentences": sentences,
        }


def _both_about(centre: np.ndarray, vectors: dict[int, np.ndarray], result_ids: Sequence[int],
                model_name: str) -> dict[int, list[str]]:
    """Per result: the (up to 3) task names nearest both it and the anchors' generic centre,
    the anchors' nearest first."""
    present = [pid for pid in result_ids if pid in vectors]
    mine, *theirs = nearest_names.nearest(np.vstack([centre, *[vectors[pid] for pid in present]]),
                                          "task", model_name)
    return {pid: [concepts.name_of(c) for c in mine if c in set(found)][:3]
            for pid, found in zip(present, theirs, strict=True)}


# --- recommend from examples ----------------------------------------------------------------------

def _concept_scores(request: RecommendRequest, shares: dict[str, float], pool: Sequence[int]
                    ) -> dict[int, float]:
    """Per candidate: sum over the weighted aspects of share_a * w_concepts(a) * (cosine of
    its names with the positives' names - NEGATIVE_WEIGHT * the largest with a negative's),
    names of the aspect's kinds (settings.RERANK_WEIGHTS), plus the same of the nearest names
    times w_nearest(a), as "similar" does. Empty when no aspect weighs names."""
    signals = {a: rerank.weights(a) for a in shares}
    signals = {a: w for a, w in signals.items() if w["concepts"] > 0 and w["kinds"]}
    if not signals or not pool:
        return {}
    idf = concept_weights().idf
    found = dict(Paper.objects.filter(pk__in=[*request.positive, *request.negative, *pool])
                 .values_list("pk", "concepts"))
    out = dict.fromkeys(pool, 0.0)
    near: dict[int, float] | None = None
    for aspect, w in signals.items():
        def vector(pid, kinds=tuple(w["kinds"])):
            return concepts.weighted(found.get(pid, ()), idf, kinds)

        centre: dict[str, float] = {}
        for pid in request.positive:
            for c, v in vector(pid).items():
                centre[c] = centre.get(c, 0.0) + v
        norm = float(np.sqrt(sum(v * v for v in centre.values()))) or 1.0
        centre = {c: v / norm for c, v in centre.items()}
        negatives = [vector(pid) for pid in request.negative]
        for pid in pool:
            out[pid] += shares[aspect] * w["concepts"] * _against_examples(
                vector(pid), centre, negatives, concepts.cosine)
        if w["nearest"] > 0:
            if near is None:  # the same task names for every aspect: computed once
                near = _nearest_scores(request, pool)
            for pid, score in near.items():
                out[pid] += shares[aspect] * w["concepts"] * w["nearest"] * score
    return out


def _nearest_scores(request: RecommendRequest, pool: Sequence[int]) -> dict[int, float]:
    """Per candidate: cosine of its nearest names (recommend.nearest_names) with the positives'
    summed ones - NEGATIVE_WEIGHT * the largest with a negative's."""
    rows = rerank.nearest_weights([*request.positive, *request.negative, *pool])
    positives = [rows[i] for i in request.positive if i in rows]
    if not positives:
        return {}
    centre = l2_normalise(np.sum(positives, axis=0))
    negatives = [rows[i] for i in request.negative if i in rows]
    return {pid: _against_examples(rows[pid], centre, negatives, _dot) for pid in pool if pid in rows}


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b))


def _against_examples(candidate, centre, negatives, similarity: Callable[[Any, Any], float]) -> float:
    """The Rocchio-style score every signal of recommend() gives a candidate: its similarity
    to the positives' centre - NEGATIVE_WEIGHT * its largest similarity to a negative."""
    score = similarity(centre, candidate)
    if negatives:
        score -= NEGATIVE_WEIGHT * max(similarity(n, candidate) for n in negatives)
    return score
