"""Can a task adapter learn from an unlabelled corpus, with the task names found in its text as labels?

    cd /work/main && HF_HUB_OFFLINE=1 nice -n 19 .venv/bin/python bench/aspects_distant.py \
        > var/bench/aspects-distant.log 2>&1

Distant supervision: the arxiv-daily corpus (74.7k papers, 2025-26, no labels) gets its task
concepts from the shipped dictionary (search.concepts); two papers naming the same task
concept of document frequency 2 .. MAX_DF form a positive pair. A linear adapter (the shipped
kind: recommend.aspects.adapter, in-batch softmax, false negatives masked) is trained on the
reference MiniLM vectors of a sample of those papers (../shared/data/embeddings: no encoding).
Epoch and mix alpha are picked on the pwc validation split (paper split, seed 13), never on a
reported split. Reported, MAP@10: pwc test (paper split), pwc task-held-out test (its tasks
were never trained on by this adapter; the two scalars were picked on pwc val papers, which
may share tasks with it), SciREX task and dataset (all 306 papers as queries and pool: this
adapter never saw SciREX). Each also with the app's concept rerank on top
(settings.RERANK_WEIGHTS["task"] / ["dataset"], bench/aspects_concepts.py's fusion).
"""

from __future__ import annotations

import gzip
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench.aspects_concepts as AC  # noqa: E402  (sets up Django)
from bench.aspects_eval import DATA, PWC, SCX, TfidfSvmPeer, load, log, pwc_split  # noqa: E402
from bench.aspects_finetune import bootstrap_ratio  # noqa: E402
from bench.aspects_fusion import ROOT, SEED, docs_of  # noqa: E402
from django.conf import settings  # noqa: E402
from search import adapters  # noqa: E402
from recommend.aspects.adapter import apply_adapter, train_adapter  # noqa: E402
from recommend.aspects.encoders import CachedEncoder, MiniLMEncoder, l2n  # noqa: E402
from recommend.aspects.methods import GenericMethod, self_retrieval_map  # noqa: E402
from recommend.aspects.metrics import per_query_metrics, relevance_from_labels, summarize  # noqa: E402
from search import concepts  # noqa: E402

SAMPLE, MAX_DF, ALPHAS = 20_000, 0.01, [round(a, 1) for a in np.arange(0.0, 1.01, 0.1)]
OUT = ROOT / "var" / "bench" / "aspects-distant.json"


def arxiv_corpus():
    """(ids, texts) of arxiv-daily deduplicated on id, first day first (the embeddings' order)."""
    seen, ids, texts = set(), [], []
    for path in sorted((DATA / "arxiv-daily").glob("*.jsonl.gz")):
        with gzip.open(path, "rt") as f:
            for line in f:
                row = json.loads(line)
                if row["id"] not in seen:
                    seen.add(row["id"])
                    ids.append(row["id"])
                    texts.append((row["title"], row["summary"]))
    return ids, texts


def distant_labels(texts):
    found = [[c for c in concepts.paper_concepts(t, a) if concepts.kind_of(c) == "task"] for t, a in texts]
    df = Counter(c for f in found for c in set(f))
    keep = {c for c, n in df.items() if 2 <= n <= MAX_DF * len(texts)}
    return [set(f) & keep for f in found], len(keep)


def mix(X, W, alpha):
    return l2n(alpha * apply_adapter(X, W) + (1 - alpha) * l2n(X))


def rows_for(V, G, lab, peer_S, tfidf_S, C, aspect):
    """{row: per-query metrics} on a self-vs-self pool: vectors V (or None), + concept rerank."""
    rel, ex = relevance_from_labels(lab, lab, True)
    out = {"generic": per_query_metrics(G @ G.T, rel, exclude=ex),
           "peer": per_query_metrics(peer_S, rel, exclude=ex)}
    w = settings.RERANK_WEIGHTS[aspect]
    for name, M in V.items():
        S = M @ M.T
        out[name] = per_query_metrics(S, rel, exclude=ex)
        m = {name: S, "tfidf": tfidf_S, "concept": C}
        out[name + " + concepts"] = per_query_metrics(
            AC.fused(AC.parts(m, name, ex, AC.N), m, name, (w["words"], w["concepts"])), rel, exclude=ex)
    return out


def concept_scores(papers, aspect):
    M = AC.concept_index(papers).matrix(tuple(settings.RERANK_WEIGHTS[aspect]["kinds"]))
    return (M @ M.T).toarray()


def main():
    t0 = time.time()
    ids, texts = arxiv_corpus()
    ref = np.load(DATA / "embeddings" / "arxiv-minilm-l6-v2.npz")
    assert list(ref["ids"]) == ids, "embeddings and arxiv-daily disagree on order"
    labels, n_concepts = distant_labels(texts)
    labelled = np.array([i for i, s in enumerate(labels) if s])
    log(f"arxiv-daily: {len(ids)} papers, {len(labelled)} with a task concept of df 2..{MAX_DF:.0%} "
        f"({n_concepts} concepts)")
    rng = np.random.default_rng(SEED)
    sample = np.sort(rng.choice(labelled, size=min(SAMPLE, len(labelled)), replace=False))
    X = ref["vectors"][sample].astype(np.float32)

    generic = GenericMethod(CachedEncoder(MiniLMEncoder(), autosave=False))
    pwc = load(PWC)
    docs = docs_of(pwc)
    tr, va, te = pwc_split(len(pwc), SEED)
    Gpwc = generic.encode(docs)
    val = (Gpwc[va], [{pwc[i]["task"]} for i in va])
    W, info = train_adapter(X, [labels[i] for i in sample], epochs=30, lr=2e-3, batch_size=128, scale=20.0,
                            val=val, val_fn=lambda W, Xv, lv: self_retrieval_map(apply_adapter(Xv, W), lv),
                            eval_every=1, time_limit_s=600.0, log=log)
    log(f"trained: best epoch {info['best_epoch']}, val {info['val']}")
    alpha = max(ALPHAS, key=lambda a: (self_retrieval_map(mix(val[0], W, a), val[1]), -a))
    log(f"alpha on pwc val: {alpha}")
    artifact = adapters._load(str(settings.ASPECT_ADAPTERS))

    peer = TfidfSvmPeer(docs)
    res = {}

    def pool(key, papers, G, lab, aspect, peer_S, tfidf_S, shipped=True):
        V = {f"distant a{alpha}": mix(G, W, alpha), "distant alone": apply_adapter(G, W)}
        if shipped and aspect in artifact.adapters:
            V["shipped adapter mix"] = artifact.apply(aspect, G)
        res[key] = rows_for(V, G, lab, peer_S, tfidf_S, concept_scores(papers, aspect), aspect)
        log(f"{key} done")

    sub = [pwc[i] for i in te]
    pool("pwc-tasks/task (test)", sub, Gpwc[te], [{p["task"]} for p in sub], "task",
         peer.scores(te, te)[0], (peer.X[te] @ peer.X[te].T).toarray())
    tasks = sorted({p["task"] for p in pwc})  # aspects_fusion_shortlist.task_heldout's split
    perm = np.random.default_rng(SEED).permutation(len(tasks))
    test_tasks = {tasks[j] for j in perm[int(0.85 * len(tasks)):]}
    th = np.array([i for i, p in enumerate(pwc) if p["task"] in test_tasks])
    sub = [pwc[i] for i in th]
    pool("pwc-taskheldout/task (test)", sub, Gpwc[th], [{p["task"]} for p in sub], "task",
         peer.scores(th, th)[0], (peer.X[th] @ peer.X[th].T).toarray(), shipped=False)
    scx = load(SCX)
    speer, Gs, allx = TfidfSvmPeer(docs_of(scx)), generic.encode(docs_of(scx)), np.arange(len(scx))
    speer_S, stfidf_S = speer.scores(allx, allx)[0], (speer.X @ speer.X.T).toarray()
    for aspect, field in (("task", "tasks"), ("dataset", "datasets")):
        # the shipped adapters saw every SciREX paper: not a held-out row there
        pool(f"scirex/{aspect} (corpus)", scx, Gs, [set(p[field]) for p in scx], aspect, speer_S, stfidf_S,
             shipped=False)

    js, wall = {}, time.time() - t0
    print(f"\nMAP@10; x = ÷ max(generic, peer). Distant adapter: {len(sample)} arXiv papers, best epoch "
          f"{info['best_epoch']}, alpha {alpha}. wall {wall:.0f} s\n")
    for key, pq in res.items():
        t = {f: summarize(v)["map_at_10"] for f, v in pq.items()}
        floor = max(t["generic"], t["peer"])
        js[key] = {"test": {f: summarize(v) for f, v in pq.items()},
                   "ratio_ci95": {f: bootstrap_ratio(pq, f) for f in pq if f not in ("generic", "peer")}}
        print(f"- {key} ({summarize(pq['generic'])['n_queries']} q): generic {t['generic']:.3f}, peer {t['peer']:.3f}; "
              + "; ".join(f"{f} {v:.3f} ({v / floor:.2f}x, CI {js[key]['ratio_ci95'][f][0]:.2f}-"
                          f"{js[key]['ratio_ci95'][f][1]:.2f})" for f, v in t.items() if f not in ("generic", "peer")))
    OUT.write_text(json.dumps({"seed": SEED, "sample": len(sample), "max_df": MAX_DF, "alpha": alpha,
                               "train": {k: v for k, v in info.items() if k != "losses"}, "losses": info["losses"],
                               "protocol": __doc__, "results": js, "wall_time_s": wall}, indent=1, default=float))
    log(f"wrote {OUT}")


if __name__ == "__main__":
    main()
