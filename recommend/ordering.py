"""One ranking, however it is asked for: "similar to this paper" and "recommend from examples".

`similar(paper, aspect)` is `recommend(positive=[paper], aspects={aspect: 1})`: the same
candidates, the same rerank, the same order, with or without a caller's `candidates` list, and
the same pages (`offset`). The steps:

1. candidates: the caller's list (filtered), or each weighted space's planner (top offset + k,
   at least RERANK_SHORTLIST; filters honoured, never short) plus, for a facet with a MaxSim
   weight, the facet's own retrieval (search/'s FDE walk);
2. vector score v(c) = sum over names a of share_a * (cos(c, positives' centre in a's space)
   - NEGATIVE_WEIGHT * max cos with a negative); a facet's space is the generic one;
3. rerank of the top RERANK_SHORTLIST by v: z(v) + sum_a share_a * (w_words(a) * z(tf-idf
   cosine) + w_concepts(a) * names' cosine) + the facets' terms (recommend.facets), as
   recommend.rerank weighs them; the rest follow in v order. RERANK_SHORTLIST = 0 or no
   weighted signal: v order, nothing reordered;
4. the page offset .. offset + k of that order; the score shown is v.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection

from recommend import facets, lexical, rerank
from recommend.params import RecommendRequest
from recommend.selectors import (
    EXPLAINED_FIELDS,
    NEGATIVE_WEIGHT,
    _against_examples,
    _concept_scores,
    _dot,
    active_aspects,
    explain,
)
from search.embedders import paper_text
from search.models import EmbeddingSpace, Paper
from search.params import InvalidParams, SearchFilters
from search.planner import filter_sql, vector_ranking
from search.selectors import NotReady, SearchResult, hydrate, stored_vectors
from search.vectors import l2_normalise


def similar_names() -> list[str]:
    """What "similar by" offers: generic, the facets (on the generic space), then the other
    active aspect spaces (task, dataset, an operator's own). "method" is the facet; the
    method space is one of its signals."""
    spaces = active_aspects()
    out = ["generic"] if "generic" in spaces else []
    if "generic" in spaces:
        out += list(facets.FACETS)
    out += sorted(a for a in spaces if a not in out)
    return out


def space_of(name: str) -> str:
    """The embedding space a name ranks in (a facet: the generic one)."""
    return "generic" if facets.is_facet(name) else name


def rerank_key(name: str) -> str:
    """Whose settings.RERANK_WEIGHTS (words, names) a name uses: a facet the generic ones."""
    return "generic" if facets.is_facet(name) else name


@dataclass
class Ranked:
    ranked: list[tuple[int, float]]  # the page: (paper id, vector score), best first
    total: int  # candidates ranked
    words: dict[int, dict] = field(default_factory=dict)
    debug: dict[str, Any] = field(default_factory=dict)


def _validated(request: RecommendRequest) -> tuple[dict[str, float], dict[str, EmbeddingSpace]]:
    """Shares per name (summing to 1) and the spaces they need; InvalidParams for what
    depends on the data (a name with no active space, unknown example papers)."""
    errors: dict[str, str] = {}
    spaces = active_aspects()
    offered = similar_names()
    weights = {a: float(w) for a, w in request.aspects.items() if float(w) > 0}
    for name in request.aspects:
        if name not in offered:
            errors["aspects"] = (f"aspect {name!r} is not available; available: "
                                 f"{', '.join(offered) or 'none yet'}")
    if not weights and "aspects" not in errors:
        errors["aspects"] = "give at least one aspect a weight above 0"
    example_ids = request.positive + request.negative
    known = set(Paper.objects.filter(pk__in=example_ids).values_list("pk", flat=True))
    unknown = [i for i in example_ids if i not in known]
    if unknown:
        errors["papers"] = f"unknown paper id(s): {', '.join(map(str, unknown[:10]))}"
    if errors:
        raise InvalidParams(errors)
    total = sum(weights.values())
    return {a: w / total for a, w in weights.items()}, spaces


def _queries(request, shares, spaces) -> dict[str, tuple[float, np.ndarray, list[np.ndarray]]]:
    """{space: (its share, positives' centre, negatives' vectors)}."""
    out: dict[str, tuple[float, np.ndarray, list[np.ndarray]]] = {}
    per_space: dict[str, float] = {}
    for name, share in shares.items():
        per_space[space_of(name)] = per_space.get(space_of(name), 0.0) + share
    for space_name, share in per_space.items():
        vectors = stored_vectors(spaces[space_name], request.positive + request.negative)
        positives = [vectors[i] for i in request.positive if i in vectors]
        if not positives:
            raise NotReady(f"this paper's {space_name} vector has not been computed yet; try again "
                           "shortly" if len(request.positive) == 1 else
                           f"the positive examples have no {space_name} vectors yet; try again shortly")
        negatives = [vectors[i] for i in request.negative if i in vectors]
        out[space_name] = (share, l2_normalise(np.mean(positives, axis=0)), negatives)
    return out


def _pool(request, shares, spaces, queries, depth: int, exclude: list[int]) -> tuple[list[int], dict]:
    plans: dict[str, Any] = {}
    if request.candidates is not None:
        where, params = filter_sql(request.filters)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT p.id FROM search_paper p WHERE p.id = ANY(%s) AND {where}",
                           [request.candidates, *params])
            return sorted(int(r[0]) for r in cursor.fetchall() if int(r[0]) not in exclude), plans
    found: set[int] = set()
    for space_name, (_, centre, negatives) in queries.items():
        # the Rocchio query, so that papers near the negatives are not the only ones left
        probe = centre - NEGATIVE_WEIGHT * np.mean(negatives, axis=0) if negatives else centre
        ranked, plans[space_name] = vector_ranking(space=spaces[space_name], vector=l2_normalise(probe),
                                                   k=depth, filters=request.filters, exclude_ids=exclude)
        found.update(pid for pid, _ in ranked)
    for name in shares:
        if facets.is_facet(name) and facets.weights(name)["maxsim"] > 0:
            extra = facets.candidates(name, request.positive, depth, request.filters, exclude)
            plans[f"facet:{name}"] = {"candidates": len(extra)}
            found.update(extra)
    return sorted(found), plans


def _vector_scores(queries, spaces, pool: Sequence[int]) -> np.ndarray:
    scores = np.zeros(len(pool), dtype=np.float64)
    for space_name, (share, centre, negatives) in queries.items():
        vectors = stored_vectors(spaces[space_name], pool)
        for i, pid in enumerate(pool):
            if pid in vectors:
                scores[i] += share * _against_examples(vectors[pid], centre, negatives, _dot)
    return scores


def _word_scores(fitted, request, ids: Sequence[int]) -> tuple[np.ndarray, list[list[str]]]:
    """tf-idf cosine of each candidate with the positives' centre - NEGATIVE_WEIGHT * the
    largest with a negative's, and the (up to 5) terms weighing most in both."""
    rows = {r["pk"]: paper_text(r["title"], r["abstract"])
            for r in Paper.objects.filter(pk__in=[*request.positive, *request.negative, *ids])
            .values("pk", "title", "abstract")}
    # rows kept per process (lexical.tfidf_rows): tokenising the shortlist was most of the CPU
    matrix = lexical.tfidf_rows(fitted, [rows.get(pid, "") for pid in ids])
    pos = lexical.tfidf_rows(fitted, [rows[p] for p in request.positive if p in rows])
    centre = np.asarray(pos.sum(axis=0)).ravel()
    norm = float(np.linalg.norm(centre))
    centre = centre / norm if norm > 0 else centre
    scores = matrix @ centre
    if request.negative:
        neg = lexical.tfidf_rows(fitted, [rows[p] for p in request.negative if p in rows])
        if neg.shape[0]:
            scores = scores - NEGATIVE_WEIGHT * np.asarray((matrix @ neg.T).todense()).max(axis=1).ravel()
    shared = []
    for i in range(len(ids)):
        row = matrix[i].tocoo()
        top = sorted(((v * centre[c], c) for v, c in zip(row.data, row.col, strict=True) if centre[c] > 0),
                     reverse=True)[:5]
        shared.append([str(fitted.terms[c]) for _, c in top])
    return np.asarray(scores, dtype=np.float64).ravel(), shared


def _aspect_cosines(request, name: str, ids: Sequence[int]) -> np.ndarray | None:
    """The cosine of the candidates with the positives in the aspect space a facet borrows."""
    space = active_aspects().get(facets.FACET_ASPECT[name])
    if space is None:
        return None
    vectors = stored_vectors(space, [*request.positive, *ids])
    positives = [vectors[p] for p in request.positive if p in vectors]
    if not positives:
        return None
    centre = l2_normalise(np.mean(positives, axis=0))
    return np.asarray([float(vectors[pid] @ centre) if pid in vectors else 0.0 for pid in ids])


def _reranked(request, shares, pool: list[int], vector: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, Ranked]:
    """The shortlist (pool indices of the top RERANK_SHORTLIST by vector score), its fused
    scores and what the explanations need; empty arrays when the rerank is off or weighs
    nothing."""
    out = Ranked([], len(pool))
    n = settings.RERANK_SHORTLIST
    signals = {rerank_key(a): rerank.weights(rerank_key(a)) for a in shares}
    w_words = sum(share * signals[rerank_key(a)]["words"] for a, share in shares.items())
    uses_names = any(w["concepts"] > 0 and w["kinds"] for w in signals.values())
    facet_on = any(facets.is_facet(a) and any(facets.weights(a).values()) for a in shares)
    if n <= 0 or not pool or not (w_words > 0 or uses_names or facet_on):
        out.debug["rerank"] = "off" if n <= 0 else "no weighted signal"
        return np.empty(0, dtype=np.int64), np.empty(0), out
    top = np.lexsort((np.asarray(pool), -vector))[:n]
    ids = [pool[i] for i in top]
    fused = rerank.zscore(vector[top])
    fitted = lexical.current() if w_words > 0 else None
    if fitted is not None:
        words, shared = _word_scores(fitted, request, ids)
        fused = fused + w_words * rerank.zscore(words)
        out.words = {pid: {"similarity": round(float(words[i]), 4), "shared": shared[i]}
                     for i, pid in enumerate(ids)}
        out.debug["lexical"] = fitted.version
    if uses_names:
        key_shares: dict[str, float] = {}
        for a, share in shares.items():
            key_shares[rerank_key(a)] = key_shares.get(rerank_key(a), 0.0) + share
        names = _concept_scores(request, key_shares, ids)
        fused = fused + np.asarray([names.get(pid, 0.0) for pid in ids])
    for name, share in shares.items():
        if not facets.is_facet(name):
            continue
        w = facets.weights(name)
        maxsim = facets.maxsim_scores(name, request.positive, request.negative, ids) if w["maxsim"] else None
        aspect = _aspect_cosines(request, name, ids) if w["aspect"] else None
        term = facets.facet_signal(w, share, maxsim, aspect)
        out.debug[f"facet:{name}"] = {"weights": w, "maxsim": maxsim is not None}
        if term is not None:
            fused = fused + term
    out.debug.update({"rerank": "on", "shortlist": len(ids)})
    return top, fused, out


def rank(request: RecommendRequest) -> Ranked:
    """The page of the one ranking (module doc) for a recommend request."""
    shares, spaces = _validated(request)
    queries = _queries(request, shares, spaces)
    exclude = sorted(set(request.positive + request.negative))
    depth = max(request.offset + request.k, max(settings.RERANK_SHORTLIST, 0))
    pool, plans = _pool(request, shares, spaces, queries, depth, exclude)
    vector = _vector_scores(queries, spaces, pool)
    top, fused, out = _reranked(request, shares, pool, vector)
    order = np.lexsort((np.asarray(pool, dtype=np.int64), -vector)).tolist() if pool else []
    if len(top):
        head = [int(top[i]) for i in np.lexsort((np.asarray(pool)[top], -fused))]
        in_head = set(head)
        order = head + [i for i in order if i not in in_head]
    page = order[request.offset:request.offset + request.k]
    out.ranked = [(pool[i], float(vector[i])) for i in page]
    out.total = len(pool)
    out.debug.update(plans)
    return out


def _result(request: RecommendRequest, mode: str) -> SearchResult:
    ranked = rank(request)
    result = SearchResult(hydrate(ranked.ranked, EXPLAINED_FIELDS), mode,
                          {"candidates": ranked.total, "offset": request.offset, **ranked.debug})
    anchors = list(Paper.objects.filter(pk__in=request.positive))
    explain(anchors=anchors, results=result.results, spaces=active_aspects())
    result_ids = [item.paper.pk for item in result.results]
    matched: dict[str, dict[int, dict]] = {}
    if len(request.positive) == 1:
        for name in request.aspects:
            if facets.is_facet(name):
                matched[name] = facets.matched_sentences(name, request.positive[0], result_ids)
    for item in result.results:
        pid = item.paper.pk
        if pid in ranked.words:
            item.details["explanation"]["words"] = ranked.words[pid]
        found = {f: by_id[pid] for f, by_id in matched.items() if pid in by_id}
        if found:
            item.details["explanation"]["facets"] = found
    return result


def recommend(request: RecommendRequest) -> SearchResult:
    """Papers like the positives and unlike the negatives, on the weighted names."""
    return _result(request, "recommend")


def similar(*, paper: Paper, aspect: str, k: int, filters: SearchFilters, offset: int = 0,
            candidates: list[int] | None = None) -> SearchResult:
    """Papers similar to one by an aspect or facet: recommend with it as the one positive."""
    return _result(RecommendRequest(positive=[paper.pk], aspects={aspect: 1.0}, filters=filters,
                                    k=k, offset=offset, candidates=candidates), f"similar:{aspect}")
