"""Ranking metrics at a cut-off (default 10) for a dense score matrix.

`scores[i, j]` is the similarity of query i to candidate j; `relevant[i]` is the set of
candidate column indices relevant to query i.  Candidates that must not be ranked (e.g. the
query itself when queries and candidates are the same papers) are passed in `exclude[i]`
(or given a score of -inf).  Queries with no relevant candidate are skipped and not counted.

- P@k     = |relevant in top k| / k
- MAP@k   = mean over queries of AP@k, AP@k = sum_{r<=k, hit at r} P@r / min(|relevant|, k)
- nDCG@k  = DCG@k / IDCG@k with binary gains and log2(rank + 1) discounts
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def _top_k(row: np.ndarray, k: int) -> np.ndarray:
    # Stable sort on -score so ties keep candidate order (deterministic).
    return np.argsort(-row, kind="stable")[:k]


def per_query_metrics(
    scores: np.ndarray,
    relevant: Sequence[Iterable[int]],
    k: int = 10,
    exclude: Sequence[Iterable[int]] | None = None,
) -> list[dict]:
    """Metrics per evaluated query: dicts with query, p, ap, ndcg, n_relevant."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] != len(relevant):
        raise ValueError("scores must be (n_queries, n_candidates) with one relevance set per query")
    out = []
    for i, rel in enumerate(relevant):
        rel = {int(j) for j in rel}
        row = scores[i].copy()
        if exclude is not None:
            ex = [int(j) for j in exclude[i]]
            row[ex] = -np.inf
            rel -= set(ex)
        if not rel:
            continue
        top = _top_k(row, k)
        top = [j for j in top if row[j] > -np.inf]  # never count excluded items
        hits = np.array([1.0 if j in rel else 0.0 for j in top])
        n_rel = len(rel)
        p = hits.sum() / k
        prec_at = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        ap = float((prec_at * hits).sum() / min(n_rel, k))
        disc = 1.0 / np.log2(np.arange(2, len(hits) + 2))
        dcg = float((hits * disc).sum())
        idcg = float((1.0 / np.log2(np.arange(2, min(n_rel, k) + 2))).sum())
        out.append({"query": i, "p": float(p), "ap": ap, "ndcg": dcg / idcg, "n_relevant": n_rel})
    return out


def summarize(per_query: list[dict]) -> dict:
    """Average per-query metrics into P@10 / MAP@10 / nDCG@10 (+ number of queries)."""
    if not per_query:
        return {"p_at_10": float("nan"), "map_at_10": float("nan"), "ndcg_at_10": float("nan"), "n_queries": 0}
    return {
        "p_at_10": float(np.mean([q["p"] for q in per_query])),
        "map_at_10": float(np.mean([q["ap"] for q in per_query])),
        "ndcg_at_10": float(np.mean([q["ndcg"] for q in per_query])),
        "n_queries": len(per_query),
    }


def evaluate(
    scores: np.ndarray,
    relevant: Sequence[Iterable[int]],
    k: int = 10,
    exclude: Sequence[Iterable[int]] | None = None,
) -> dict:
    """P@k, MAP@k, nDCG@k averaged over queries that have at least one relevant candidate."""
    return summarize(per_query_metrics(scores, relevant, k=k, exclude=exclude))


def relevance_from_labels(
    query_labels: Sequence[set], cand_labels: Sequence[set], same_items: bool = False
) -> tuple[list[set[int]], list[set[int]] | None]:
    """Relevant = candidate shares at least one label with the query.

    With `same_items=True` (queries are the candidates) the diagonal is excluded.
    Returns (relevant, exclude).
    """
    index: dict = {}
    for j, labs in enumerate(cand_labels):
        for lab in labs:
            index.setdefault(lab, set()).add(j)
    relevant = []
    for labs in query_labels:
        rel: set[int] = set()
        for lab in labs:
            rel |= index.get(lab, set())
        relevant.append(rel)
    exclude = [{i} for i in range(len(query_labels))] if same_items else None
    if same_items:
        relevant = [r - {i} for i, r in enumerate(relevant)]
    return relevant, exclude


def bootstrap_ratio(per_query: dict[str, list[dict]], row: str, n: int = 2000, seed: int = 13) -> list[float]:
    """95% interval of MAP@10(row) / max(MAP@10 generic, MAP@10 peer), queries resampled
    together (paired) n times."""
    rng = np.random.default_rng(seed)
    ap = {r: np.array([q["ap"] for q in per_query[r]]) for r in (row, "generic", "peer")}
    idx = rng.integers(0, len(ap[row]), size=(n, len(ap[row])))
    ratio = ap[row][idx].mean(1) / np.maximum(ap["generic"][idx].mean(1), ap["peer"][idx].mean(1))
    return [float(np.percentile(ratio, 2.5)), float(np.percentile(ratio, 97.5))]


def bootstrap_mean_ratio(num: Sequence[float], den: Sequence[float], n: int = 2000, seed: int = 13
                         ) -> list[float]:
    """95% interval of mean(num) / mean(den) over the same queries resampled together (paired)
    n times: e.g. one method's per-reader AP against the peer's."""
    a, b = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    if len(a) != len(b) or not len(a):
        raise ValueError("paired values of at least one query are needed")
    idx = np.random.default_rng(seed).integers(0, len(a), size=(n, len(a)))
    ratio = a[idx].mean(1) / np.maximum(b[idx].mean(1), 1e-12)
    return [float(np.percentile(ratio, 2.5)), float(np.percentile(ratio, 97.5))]


def graded_metrics(scores: np.ndarray, grades: Sequence[dict[int, int]], exclude: Sequence[Iterable[int]],
                   k: int = 10, k_graded: int = 20) -> list[dict]:
    """Per query with a relevant candidate: P@k, AP@k and nDCG@k on binary relevance (grade
    >= 1, as per_query_metrics) and "ndcg20": nDCG@k_graded with the grades as linear gains
    (log2(rank + 1) discounts; the ideal order over every graded candidate). `grades[i]` maps
    candidate column -> grade > 0; unlisted candidates are 0."""
    binary = per_query_metrics(scores, [set(g) for g in grades], k=k, exclude=exclude)
    scores = np.asarray(scores, dtype=np.float64)
    disc = 1.0 / np.log2(np.arange(2, k_graded + 2))
    for row in binary:
        i = row["query"]
        s = scores[i].copy()
        s[[int(j) for j in exclude[i]]] = -np.inf
        top = [j for j in _top_k(s, k_graded) if s[j] > -np.inf]
        gains = np.array([grades[i].get(int(j), 0) for j in top], dtype=np.float64)
        ideal = np.sort(np.array([g for j, g in grades[i].items() if j not in set(exclude[i])],
                                 dtype=np.float64))[::-1][:k_graded]
        idcg = float((ideal * disc[:len(ideal)]).sum())
        row["ndcg20"] = float((gains * disc[:len(gains)]).sum()) / idcg if idcg > 0 else 0.0
    return binary


def summarize_graded(per_query: list[dict]) -> dict:
    out = summarize(per_query)
    out["ndcg_20"] = float(np.mean([q["ndcg20"] for q in per_query])) if per_query else float("nan")
    return out


def bootstrap_paired(per_query: dict[str, list[dict]], row: str, base: str, key: str = "ndcg20",
                     n: int = 2000, seed: int = 13) -> list[float]:
    """95% interval of mean(key of row) / mean(key of base) over the same queries resampled
    together (paired) n times."""
    return bootstrap_mean_ratio([q[key] for q in per_query[row]], [q[key] for q in per_query[base]],
                                n=n, seed=seed)
