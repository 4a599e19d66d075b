"""Does the fine-tuned MiniLM task encoder (bench/aspects_finetune.py) generalise?

    cd /work/main && HF_HUB_OFFLINE=1 nice -n 19 .venv/bin/python bench/aspects_finetune_generalise.py \
        > var/bench/aspects-finetune-generalise.log 2>&1

Training recipe, encode, val metric, splits, peer and metrics are aspects_finetune's / aspects_eval's /
aspects_fusion's (seed 13; imported, not copied).  blend(a) = l2n(a * ft + (1 - a) * generic), a in ALPHAS.
1. Task-held-out pwc: the distinct pwc TASKS (sorted, permuted with seed 13) split 70/15/15; a fresh copy of
   all-MiniLM-L6-v2 is fine-tuned (aspects_finetune.finetune: same LR, batch, 128 train tokens, loss,
   sampler, schedule) on train-task papers only, with EPOCHS epochs and a TIME_LIMIT_S cap; epoch, inference
   length and a are picked on val-task papers (val vs val).  Reported on test-task papers (test vs test):
   generic, peer, the shipped adapter mix (LEAKY here: trained on the paper-split pwc train, which holds
   test-task papers), ft alone and the blends; bootstrap CI95 of MAP / max(generic, peer).
2. Transfer of the blends, for the paper-split model (/tmp/aspects-ft/best from aspects_finetune.py, reused;
   its inference length from var/bench/aspects-finetune.json) and the task-held-out model:
   pwc paper-split test (60/20/20 papers; task and area; test vs test) and SciREX "same task" / "same
   dataset" (candidates = all 306; queries = papers whose normalised title is not in that model's pwc
   training papers).  CI95 = paired bootstrap over queries of MAP(blend) - MAP(generic).
   NB the task-held-out model trained on ~70% of the paper-split test papers: its pwc paper-split rows leak.
Writes var/bench/aspects-finetune-generalise.json; the task-held-out model goes to /tmp/aspects-ft2/.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench.aspects_finetune as AF  # noqa: E402  (sets up Django via aspects_fusion)
from django.conf import settings  # noqa: E402

from bench.aspects_eval import PWC, SCX, TfidfSvmPeer, load, log, norm_title  # noqa: E402
from bench.aspects_finetune import bootstrap_ratio, encode, finetune, self_map  # noqa: E402
from bench.aspects_fusion import ROOT, SEED, docs_of  # noqa: E402
from search import adapters  # noqa: E402
from recommend.aspects.encoders import CachedEncoder, MiniLMEncoder, l2n  # noqa: E402
from recommend.aspects.methods import GenericMethod  # noqa: E402
from recommend.aspects.metrics import per_query_metrics, relevance_from_labels, summarize  # noqa: E402
from recommend.aspects.text import doc_text  # noqa: E402

ALPHAS = (0.3, 0.5, 0.7, 1.0)
TH_EPOCHS, TH_LIMIT_S = 3, 510  # task-held-out run: 3 epochs, ~8.5 min cap (incl. val encodes)
OUT = ROOT / "var" / "bench" / "aspects-finetune-generalise.json"
FT_PAPER, FT2_DIR = Path("/tmp/aspects-ft/best"), Path("/tmp/aspects-ft2")


def blend(F, G, a):
    return l2n(a * F + (1 - a) * G)


def pq_self(V_or_S, labels, is_scores=False):
    """Per-query metrics, queries = candidates (self excluded)."""
    rel, ex = relevance_from_labels(labels, labels, same_items=True)
    return per_query_metrics(V_or_S if is_scores else V_or_S @ V_or_S.T, rel, exclude=ex)


def boot_diff(a, b, n=2000):
    a, b = np.array([q["ap"] for q in a]), np.array([q["ap"] for q in b])
    idx = np.random.default_rng(SEED).integers(0, len(a), size=(n, len(a)))
    d = (a[idx] - b[idx]).mean(1)
    return [float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))]


def rows_for(F, G, labels, extra):
    """{row: per-query list} for generic, the blends and the extra score matrices."""
    pq = {"generic": pq_self(G, labels)}
    pq.update({k: pq_self(S, labels, is_scores=True) for k, S in extra.items()})
    for a in ALPHAS:
        pq[f"a={a}"] = pq_self(blend(F, G, a), labels)
    return pq


def task_heldout(papers, texts, G, peer, artifact):
    tasks = sorted({p["task"] for p in papers})
    perm = np.random.default_rng(SEED).permutation(len(tasks))
    c1, c2 = int(0.7 * len(tasks)), int(0.85 * len(tasks))
    which = {tasks[j]: s for s, ix in (("train", perm[:c1]), ("val", perm[c1:c2]), ("test", perm[c2:])) for j in ix}
    ix = {s: np.array([i for i, p in enumerate(papers) if which[p["task"]] == s]) for s in ("train", "val", "test")}
    lab = {s: [{papers[i]["task"]} for i in v] for s, v in ix.items()}
    AF.EPOCHS, AF.TIME_LIMIT_S = TH_EPOCHS, TH_LIMIT_S  # module globals read by AF.finetune at call time
    log(f"task-held-out: tasks {len(tasks)} -> {c1}/{c2 - c1}/{len(tasks) - c2}, papers "
        f"{[len(v) for v in ix.values()]}; fine-tuning (EPOCHS {AF.EPOCHS}, cap {AF.TIME_LIMIT_S} s)")
    model, info = finetune([texts[i] for i in ix["train"]], [papers[i]["task"] for i in ix["train"]],
                           [texts[i] for i in ix["val"]], lab["val"])
    FT2_DIR.mkdir(parents=True, exist_ok=True)
    model.save(str(FT2_DIR / "task-heldout"))
    F = {s: encode(model, [texts[i] for i in ix[s]], info["infer_len"]) for s in ("val", "test")}
    curve = {a: self_map(blend(F["val"], G[ix["val"]], a), lab["val"]) for a in (0.0,) + ALPHAS}
    alpha = max(ALPHAS, key=lambda a: (curve[a], a))  # ties -> more ft
    te = ix["test"]
    A = artifact.apply("task", G[te])
    pq = rows_for(F["test"], G[te], lab["test"], {"peer": peer.scores(te, te)[0], "adapter-mix (leaky)": A @ A.T})
    test = {r: summarize(q) for r, q in pq.items()}
    floor = max(test["generic"]["map_at_10"], test["peer"]["map_at_10"])
    out = {"tasks": {"train": c1, "val": c2 - c1, "test": len(tasks) - c2, "n_distinct": len(tasks)},
           "papers": {s: len(v) for s, v in ix.items()}, "finetune": info, "val_alpha_curve": curve,
           "alpha_val": alpha, "test": test, "max_baseline": floor,
           "ratio": {r: s["map_at_10"] / floor for r, s in test.items()},
           "ratio_ci95": {r: bootstrap_ratio(pq, r) for r in pq if r.startswith("a=") or r.startswith("adapter")}}
    return out, model, set(ix["train"].tolist())


def pwc_paper_split(papers, texts, G, peer, models):
    n = len(papers)
    perm = np.random.default_rng(SEED).permutation(n)
    te = perm[int(0.8 * n):]
    Speer = peer.scores(te, te)[0]
    out = {"n_test": len(te)}
    for name, (model, L, train_ix) in models.items():
        F = encode(model, [texts[i] for i in te], L)
        res = {"test_papers_in_training": int(sum(int(i) in train_ix for i in te))}
        for aspect in ("task", "area"):
            lab = [{papers[i][aspect]} for i in te]
            pq = rows_for(F, G[te], lab, {"peer": Speer})
            t = {r: summarize(q) for r, q in pq.items()}
            floor = max(t["generic"]["map_at_10"], t["peer"]["map_at_10"])
            res[aspect] = {"test": t, "max_baseline": floor, "ratio": {r: s["map_at_10"] / floor for r, s in t.items()},
                           "ratio_ci95": {r: bootstrap_ratio(pq, r) for r in pq if r.startswith("a=")}}
        out[name] = res
    return out


def scirex(pwc, models, generic):
    papers = load(SCX)
    docs, n = docs_of(papers), len(papers)
    texts = [doc_text(d) for d in docs]
    peer = TfidfSvmPeer(docs)
    G = generic.encode(docs)
    Speer = peer.scores(np.arange(n), np.arange(n))[0]
    out = {}
    for name, (model, L, train_ix) in models.items():
        seen = {norm_title(pwc[i]["title"]) for i in train_ix}
        q = [i for i, p in enumerate(papers) if norm_title(p["title"]) not in seen]
        F = encode(model, texts, L)
        blends = {a: blend(F, G, a) for a in ALPHAS}
        res = {"excluded_queries": n - len(q)}
        for aspect, key in (("task", "tasks"), ("dataset", "datasets")):
            lab = [set(p[key]) for p in papers]
            rel, _ = relevance_from_labels([lab[i] for i in q], lab, same_items=False)
            rel, ex = [r - {i} for r, i in zip(rel, q)], [{i} for i in q]
            mats = {"generic": G @ G.T, "peer": Speer, **{f"a={a}": B @ B.T for a, B in blends.items()}}
            pq = {r: per_query_metrics(S[q], rel, exclude=ex) for r, S in mats.items()}
            diff = {r: boot_diff(pq[r], pq["generic"]) for r in pq if r.startswith("a=")}
            res[aspect] = {"test": {r: summarize(v) for r, v in pq.items()}, "diff_vs_generic_ci95": diff}
        out[name] = res
    return out


def f3(x):
    return f"{x:.3f}"


def main():
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(2)
    t0 = time.time()
    generic = GenericMethod(CachedEncoder(MiniLMEncoder(), autosave=False))
    artifact = adapters._load(str(settings.ASPECT_ADAPTERS))
    assert artifact is not None and "task" in artifact.adapters, artifact
    papers = load(PWC)
    docs = docs_of(papers)
    texts = [doc_text(d) for d in docs]
    G = generic.encode(docs)
    peer = TfidfSvmPeer(docs)
    th, th_model, th_train = task_heldout(papers, texts, G, peer, artifact)
    prev = json.loads((ROOT / "var" / "bench" / "aspects-finetune.json").read_text())["pwc"]["finetune"]
    if FT_PAPER.exists():
        ps_model, ps_note = SentenceTransformer(str(FT_PAPER), device="cpu"), f"reused {FT_PAPER}"
        ps_len = prev["infer_len"]
    else:  # retrain with aspects_finetune's recipe (its 4 epochs) on the paper split
        log("paper-split model missing: retraining")
        AF.EPOCHS, AF.TIME_LIMIT_S = 4, 15 * 60
        perm = np.random.default_rng(SEED).permutation(len(papers))
        tr, va = perm[: int(0.6 * len(papers))], perm[int(0.6 * len(papers)): int(0.8 * len(papers))]
        ps_model, info = finetune([texts[i] for i in tr], [papers[i]["task"] for i in tr],
                                  [texts[i] for i in va], [{papers[i]["task"]} for i in va])
        ps_len, ps_note = info["infer_len"], "retrained"
    ps_train = set(np.random.default_rng(SEED).permutation(len(papers))[: int(0.6 * len(papers))].tolist())
    models = {"paper-split": (ps_model, ps_len, ps_train),
              "task-heldout": (th_model, th["finetune"]["infer_len"], th_train)}
    log("pwc paper-split test")
    ps = pwc_paper_split(papers, texts, G, peer, models)
    log("scirex")
    scx = scirex(papers, models, generic)
    wall = time.time() - t0

    fi = th["finetune"]
    print(f"\nwall {wall:.0f} s.  Task-held-out: {th['tasks']} tasks, papers {th['papers']}; fine-tune "
          f"{fi['train_time_s']:.0f} s, epochs run {len(fi['losses'])}/{TH_EPOCHS}"
          f"{' (stopped early)' if 'stopped_early_in_epoch' in fi else ''}, best epoch {fi['best_epoch']} "
          f"@ len {fi['infer_len']} (val MAP {fi['best_val_map']:.3f}); val alpha curve "
          f"{ {a: round(v, 3) for a, v in th['val_alpha_curve'].items()} } -> alpha {th['alpha_val']}")
    q = th["test"]["generic"]["n_queries"]
    print(f"\n### pwc task-held-out, test-task papers ({q} queries)\n\n"
          "| row | P@10 | MAP@10 | ÷max(gen,peer) | CI95 |")
    print("|---|---|---|---|---|")
    for r, s in th["test"].items():
        ci = th["ratio_ci95"].get(r)
        mark = " (val-chosen)" if r == f"a={th['alpha_val']}" else ""
        print(f"| {r}{mark} | {f3(s['p_at_10'])} | {f3(s['map_at_10'])} | {th['ratio'][r]:.2f} | "
              f"{'' if ci is None else f'{ci[0]:.2f}-{ci[1]:.2f}'} |")
    for name in models:
        p, s = ps[name], scx[name]
        print(f"\n### {name} model: MAP@10 (pwc paper-split test, {p['task']['test']['generic']['n_queries']}/"
              f"{p['area']['test']['generic']['n_queries']} q, {p['test_papers_in_training']} of {ps['n_test']} test "
              f"papers in its training set; SciREX {s['task']['test']['generic']['n_queries']}/"
              f"{s['dataset']['test']['generic']['n_queries']} q, {s['excluded_queries']} excluded)\n")
        print("| row | pwc task (÷max) | pwc area (÷max) | SciREX task (Δgen CI95) | SciREX dataset (Δgen CI95) |")
        print("|---|---|---|---|---|")
        for r in ["generic", "peer"] + [f"a={a}" for a in ALPHAS]:
            cells = [f"{f3(p[a]['test'][r]['map_at_10'])} ({p[a]['ratio'][r]:.2f})" for a in ("task", "area")]
            for a in ("task", "dataset"):
                m, ci = s[a]["test"][r]["map_at_10"], s[a]["diff_vs_generic_ci95"].get(r)
                cells.append(f3(m) + ("" if ci is None else f" ({ci[0]:+.3f}..{ci[1]:+.3f})"))
            print(f"| {r} | " + " | ".join(cells) + " |")
        ge = lambda r: all(s[a]["test"][r]["map_at_10"] >= s[a]["test"]["generic"]["map_at_10"]  # noqa: E731
                           for a in ("task", "dataset"))
        ok = [r for r in (f"a={a}" for a in ALPHAS) if p["task"]["ratio"][r] >= 1.3 and ge(r)]
        ps[name]["meets_1.3x_pwc_task_and_ge_generic_scirex"] = ok
        print(f"\n{name}: alphas with >= 1.3x on pwc task AND >= generic on SciREX task and dataset: {ok or 'none'}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"seed": SEED, "protocol": __doc__, "alphas": ALPHAS,
                               "task_heldout_epochs": TH_EPOCHS, "time_limit_s": TH_LIMIT_S,
                               "task_heldout": th, "pwc_paper_split": ps, "scirex": scx,
                               "paper_split_model": ps_note, "model_dirs": {
                                   "paper-split": str(FT_PAPER), "task-heldout": str(FT2_DIR / "task-heldout")},
                               "wall_time_s": wall}, indent=1, default=float))
    log(f"wrote {OUT}")


if __name__ == "__main__":
    main()
