""""More like these": do the names found in the text help recommend() from two examples?

    python manage.py bench aspects-recommend

Queries: two papers sharing a label (each paper of the pool with one random partner of its
label, seed 13); relevant: the other papers with that label; the two examples are excluded.
recommend()'s scoring: the cosine to the mean of the examples' vectors over its candidate pool
(the top POOL by that cosine, as the app's planner depth for k = 10), then, as the app does,
z(vector score) + w * cosine(candidate's concepts, the examples' summed concept vectors), w and
kinds = settings.RERANK_WEIGHTS of the aspect, with the nearest names (recommend.nearest_names)
weighed inside the names term as "similar" does; a grid of w beside it, picked on pwc validation.
Peer: arxiv-sanity-lite with both examples as positives (its own multi-paper mode).
Pools: pwc test split, task (vectors: the shipped task adapter mix) and the same on the val
split for the grid; SciREX task and dataset, all 306 papers (generic vectors: the shipped
adapters saw SciREX).
"""

from __future__ import annotations

import time

import numpy as np

from bench.aspect_methods import GenericMethod
from bench.aspects import MINILM, concept_index, nearest_task_weights
from bench.common import (
    OUT,
    PWC,
    SCX,
    SEED,
    docs_of,
    log,
    pwc_split,
    read_jsonl,
    require_data,
    write_json,
)
from bench.encoders import CachedEncoder, MiniLMEncoder
from bench.metrics import per_query_metrics, summarize
from bench.peer import TfidfSvmPeer
from search.vectors import l2_normalise as l2n

HELP = "'more like these': recommend() from two examples, with and without the names"
POOL, GRID = 50, (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)
OUT = OUT / "aspects-recommend.json"


def add_arguments(parser):
    pass


def pairs(labels, rng):
    """(i, j, label) per paper i with a random other paper j sharing a label with it."""
    out = []
    for i, labs in enumerate(labels):
        # sorted: set order of strings changes with every process (hash seed), the draw must not
        partners = [(j, lab) for j, other in enumerate(labels) if j != i for lab in sorted(labs & other)]
        if partners:
            j, lab = partners[rng.integers(len(partners))]
            out.append((i, j, lab))
    return out


def peer_scores(peer, idx, queries):
    from sklearn import svm

    X = peer.X[idx]
    S = np.zeros((len(queries), len(idx)))
    for r, (i, j, _) in enumerate(queries):
        y = np.zeros(len(idx), dtype=np.float32)
        y[[i, j]] = 1
        clf = svm.LinearSVC(class_weight="balanced", max_iter=10000, tol=1e-6, C=0.01).fit(X, y)
        S[r] = clf.decision_function(X)
    return S


def evaluate(V, C, labels, queries, peer_S, ws, NW):
    """{row: per-query metrics}: vector only, peer, vector + w * (concepts + λ * nearest names)
    for (w, λ) in ws; NW: the papers' nearest-name weights (recommend.nearest_names)."""
    rel = [{c for c, labs in enumerate(labels) if lab in labs} - {i, j} for i, j, lab in queries]
    ex = [{i, j} for i, j, _ in queries]
    centre = l2n(V[[i for i, _, _ in queries]] + V[[j for _, j, _ in queries]])
    vec = centre @ V.T
    mine = C[[i for i, _, _ in queries]] + C[[j for _, j, _ in queries]]
    norms = np.sqrt(np.asarray(mine.multiply(mine).sum(axis=1))).ravel()
    con = np.asarray((mine @ C.T).todense()) / np.maximum(norms, 1e-12)[:, None]
    near = l2n(NW[[i for i, _, _ in queries]] + NW[[j for _, j, _ in queries]]) @ NW.T
    out = {"vector": per_query_metrics(vec, rel, exclude=ex), "peer": per_query_metrics(peer_S, rel, exclude=ex)}
    masked = vec.copy()
    for r, e in enumerate(ex):
        masked[r, list(e)] = -np.inf
    keep = np.zeros(vec.shape, bool)
    np.put_along_axis(keep, np.argsort(-masked, axis=1)[:, :POOL], True, axis=1)
    in_pool = np.where(keep, vec, np.nan)
    zv = (in_pool - np.nanmean(in_pool, 1, keepdims=True)) / np.nanstd(in_pool, 1, keepdims=True)
    for name, (w, lam) in ws.items():
        out[name] = per_query_metrics(np.where(keep, np.nan_to_num(zv) + w * (con + lam * near), -1e3 + vec),
                                      rel, exclude=ex)
    return out


def shipped_weights(aspect):
    """(kinds, w_concepts, w_nearest) of settings.RERANK_WEIGHTS."""
    from recommend import rerank

    w = rerank.weights(aspect)
    return tuple(w["kinds"]), w["concepts"], w["nearest"]


def nearest(G):
    """Nearest task names' weights of generic vectors G (torch MiniLM, as G)."""
    return nearest_task_weights(G)


def run(command, **_):
    from search import adapters
    from search.embedders import get_encoder

    require_data(PWC, SCX)
    t0 = time.time()
    generic = GenericMethod(CachedEncoder(MiniLMEncoder()))
    artifact = adapters.current(get_encoder(MINILM))
    rng = np.random.default_rng(SEED)
    pwc = read_jsonl(PWC)
    docs = docs_of(pwc)
    peer = TfidfSvmPeer(docs)
    _, va, te = pwc_split(len(pwc), SEED)
    G = generic.encode(docs)
    res, chosen = {}, {}
    for aspect, field in (("task", "task"),):
        kinds, shipped, lam = shipped_weights(aspect)
        for split, idx in (("val", va), ("test", te)):
            sub = [pwc[i] for i in idx]
            labels = [{p[field]} for p in sub]
            qs = pairs(labels, rng)
            C = concept_index(sub).matrix(kinds)
            V = artifact.apply(aspect, G[idx])
            ws = {f"+ concepts w {w:g}": (w, 0.0) for w in GRID} if split == "val" else \
                {f"+ concepts w {chosen[aspect]:g} (val)": (chosen[aspect], 0.0),
                 "+ concepts (settings, no nearest)": (shipped, 0.0), "+ concepts (settings)": (shipped, lam)}
            pq = evaluate(V, C, labels, qs, peer_scores(peer, idx, qs), ws, nearest(G[idx]))
            if split == "val":
                chosen[aspect] = max(GRID, key=lambda w: (summarize(pq[f"+ concepts w {w:g}"])["map_at_10"], -w))
            res[f"pwc-tasks/{aspect} ({split})"] = pq
            log(f"pwc {split} done ({len(qs)} queries)")
    scx = read_jsonl(SCX)
    speer, Gs = TfidfSvmPeer(docs_of(scx)), generic.encode(docs_of(scx))
    for aspect, field in (("task", "tasks"), ("dataset", "datasets")):
        kinds, shipped, lam = shipped_weights(aspect)
        labels = [set(p[field]) for p in scx]
        qs = pairs(labels, rng)
        C = concept_index(scx).matrix(kinds)
        ws = {"+ concepts (settings, no nearest)": (shipped, 0.0), "+ concepts (settings)": (shipped, lam)}
        if aspect in chosen:
            ws[f"+ concepts w {chosen[aspect]:g} (val)"] = (chosen[aspect], 0.0)
        res[f"scirex/{aspect}"] = evaluate(Gs, C, labels, qs, peer_scores(speer, np.arange(len(scx)), qs), ws,
                                           nearest(Gs))
        log(f"scirex {aspect} done ({len(qs)} queries)")
    js, wall = {}, time.time() - t0
    command.stdout.write(f"\nMAP@10, two examples per query (x = ÷ max(vector, peer)). wall {wall:.0f} s\n")
    for key, pq in res.items():
        t = {f: summarize(v)["map_at_10"] for f, v in pq.items()}
        floor = max(t["vector"], t["peer"])
        js[key] = {f: summarize(v) for f, v in pq.items()}
        command.stdout.write(f"- {key} ({summarize(pq['vector'])['n_queries']} q): " + "; ".join(
            f"{f} {v:.3f} ({v / floor:.2f}x)" for f, v in t.items()))
    write_json(OUT, {"seed": SEED, "pool": POOL, "grid": GRID, "chosen": chosen, "protocol": __doc__,
                     "results": js, "wall_time_s": wall})
    log(f"wrote {OUT}")

