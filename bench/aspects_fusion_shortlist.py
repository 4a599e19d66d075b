"""Does lexical fusion survive as a RERANK of a vector shortlist, and on unseen pwc tasks?

    cd /work/main && HF_HUB_OFFLINE=1 nice -n 19 .venv/bin/python bench/aspects_fusion_shortlist.py \
        > var/bench/aspects-fusion-shortlist.log 2>&1

Splits, pools, relevance, peer (tf-idf fit on ALL papers of each dataset, as aspects_eval), adapters, z
fusion, w rule (GRID, best val MAP@10, ties -> w nearest 1): aspects_fusion's (seed 13).  "<b>+tfidf" =
its full-pool fusion; "<b>+tfidf@N" = rerank of the top N by the base cosine, z(base) and z(tf-idf cos)
over those N only, w picked on val per N, the rest in base order below (@all must equal full pool).
pwc paper split (area adapter trained as aspects_fusion); SciREX task/dataset, adapter per fold, pools
"fold"/"corpus"; pwc TASK-held-out (aspects_finetune_generalise's 70/15/15 task split, re-derived: it
is inline there): val-task papers pick w, test-task reported; adapter-mix there is LEAKY.
"""

from __future__ import annotations
import json, sys, time  # noqa: E401
from pathlib import Path
import numpy as np
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench.aspects_fusion as AFU  # noqa: E402  (sets up Django)
from django.conf import settings  # noqa: E402
from bench.aspects_eval import PWC, SCX, TfidfSvmPeer, load, log, norm_title, pwc_split  # noqa: E402
from bench.aspects_finetune import bootstrap_ratio  # noqa: E402
from bench.aspects_finetune_generalise import boot_diff  # noqa: E402
from bench.aspects_fusion import GRID, ROOT, SEED, adapter_mix, docs_of, run, train_mix, tune, z  # noqa: E402
from search import adapters  # noqa: E402
from recommend.aspects.encoders import CachedEncoder, MiniLMEncoder  # noqa: E402
from recommend.aspects.methods import GenericMethod  # noqa: E402
from recommend.aspects.metrics import evaluate, per_query_metrics, relevance_from_labels, summarize  # noqa: E402

NS, BASES = (50, 100, 200, None), ("generic", "adapter-mix")
OUT = ROOT / "var" / "bench" / "aspects-fusion-shortlist.json"
tag = lambda b, n: f"{b}+tfidf@{'all' if n is None else n}"  # noqa: E731


def shortlist_parts(m, base, ex, n):
    """(in-shortlist mask, z(base), z(tfidf)) with both z over the top-n-by-base candidates only."""
    B = np.nan_to_num(AFU.masked(m[base], ex), nan=-np.inf)
    keep = np.zeros(B.shape, bool)
    np.put_along_axis(keep, np.argsort(-B, axis=1, kind="stable")[:, : n or B.shape[1]], True, axis=1)
    keep &= np.isfinite(B)
    out = [set(np.flatnonzero(~k).tolist()) for k in keep]  # self + everything outside the shortlist
    return keep, z(m[base], out), z(m["tfidf"], out)


def sl_scores(parts, m, base, w):
    keep, zb, zt = parts  # shortlist by fused score, then the rest in base order (cosine - 1e3 < any z)
    return np.where(keep, zb + w * zt, m[base] - 1e3)


def tune_all(mv, rel, ex, bases):
    """{row: w} on the validation pool: aspects_fusion.tune for its fusions + shortlist rows."""
    ws = {f: w for f, (w, _) in tune(mv, rel, ex).items()}
    for b in bases:
        for n in NS:
            p = shortlist_parts(mv, b, ex, n)
            curve = [(w, evaluate(sl_scores(p, mv, b, w), rel, exclude=ex)["map_at_10"]) for w in GRID]
            ws[tag(b, n)] = max(curve, key=lambda c: (np.nan_to_num(c[1], nan=-1), -abs(np.log2(c[0]))))[0]
    return ws


def test_all(mt, rel, ex, ws, bases):
    pq = run(mt, rel, ex, {f: (w,) for f, w in ws.items()})
    pq.update({tag(b, n): per_query_metrics(sl_scores(shortlist_parts(mt, b, ex, n), mt, b, ws[tag(b, n)]), rel,
                                            exclude=ex) for b in bases for n in NS})
    return pq


def lex(peer, G, idx):  # peer / tf-idf / generic score matrices of a self-vs-self pool
    return {"peer": peer.scores(idx, idx)[0], "tfidf": (peer.X[idx] @ peer.X[idx].T).toarray(), "generic": G[idx] @ G[idx].T}


def pwc(generic, artifact, G, peer, papers):
    docs = docs_of(papers)
    tr, va, te = pwc_split(len(papers), SEED)
    out, sub = {}, lambda idx: [docs[i] for i in idx]
    log(f"pwc paper split: peer svm on {len(va)} val + {len(te)} test queries")
    base = {s: lex(peer, G, idx) for s, idx in (("val", va), ("test", te))}
    for aspect in ("task", "area"):
        lab = [{p[aspect]} for p in papers]
        vecs, info = adapter_mix(generic, artifact, aspect, docs, lab, tr, va)
        m, rx = {}, {}
        for s, idx in (("val", va), ("test", te)):
            A = vecs(sub(idx))
            m[s], rx[s] = {**base[s], "adapter-mix": A @ A.T}, relevance_from_labels(*[[lab[i] for i in idx]] * 2, True)
        ws = tune_all(m["val"], *rx["val"], BASES)
        out[f"pwc-tasks/{aspect}"] = {"pq": test_all(m["test"], *rx["test"], ws, BASES), "w": ws, "adapter": info}
    return out


def task_heldout(artifact, G, peer, papers):
    tasks = sorted({p["task"] for p in papers})  # == aspects_finetune_generalise.task_heldout's split
    perm = np.random.default_rng(SEED).permutation(len(tasks))
    c1, c2 = int(0.7 * len(tasks)), int(0.85 * len(tasks))
    which = {tasks[j]: s for s, ix in (("train", perm[:c1]), ("val", perm[c1:c2]), ("test", perm[c2:])) for j in ix}
    ix = {s: np.array([i for i, p in enumerate(papers) if which[p["task"]] == s]) for s in ("train", "val", "test")}
    log(f"task-held-out: papers {[len(v) for v in ix.values()]}; peer svm on val + test")
    m, rx = {}, {}  # test-task / val-task papers, each ranked against its own split
    for s in ("val", "test"):
        idx, A = ix[s], artifact.apply("task", G[ix[s]])
        m[s] = {**lex(peer, G, idx), "adapter-mix": A @ A.T}
        rx[s] = relevance_from_labels(*[[{papers[i]["task"]} for i in idx]] * 2, True)
    ws = tune_all(m["val"], *rx["val"], BASES)
    return {"pwc-taskheldout/task": {"pq": test_all(m["test"], *rx["test"], ws, BASES), "w": ws,
                                     "papers": {s: len(v) for s, v in ix.items()}, "adapter": "shipped, LEAKY"}}


def scirex(generic, pwc_papers, k_folds=5):
    papers = load(SCX)
    docs, n, out = docs_of(papers), len(papers), {}
    labels = {"task": [set(p["tasks"]) for p in papers], "dataset": [set(p["datasets"]) for p in papers]}
    folds = np.array_split(np.random.default_rng(SEED).permutation(n), k_folds)
    full = lex(TfidfSvmPeer(docs), generic.encode(docs), np.arange(n))
    titles = {norm_title(p["title"]) for p in papers}
    pwc_tr = [pwc_papers[i] for i in np.random.default_rng(SEED).permutation(len(pwc_papers))[: int(0.6 * len(pwc_papers))]
              if norm_title(pwc_papers[i]["title"]) not in titles]
    for k in range(k_folds):
        te, va = folds[k], folds[(k + 1) % k_folds]
        tr = np.concatenate([folds[j] for j in range(k_folds) if j not in (k, (k + 1) % k_folds)])
        for aspect, lab in labels.items():
            tr_docs, tr_labels = [docs[i] for i in tr], [{"scx:" + x for x in lab[i]} for i in tr]
            if aspect == "task":
                tr_docs, tr_labels = docs_of(pwc_tr) + tr_docs, [{"pwc:" + p["task"]} for p in pwc_tr] + tr_labels
            log(f"scirex fold {k} / {aspect}: adapter")
            vecs, info = train_mix(generic, aspect, tr_docs, tr_labels, [docs[i] for i in va], [lab[i] for i in va])
            A, vlab = vecs(docs), [lab[i] for i in va]
            m = {**full, "adapter-mix": A @ A.T}
            ws = tune_all({s: M[np.ix_(va, va)] for s, M in m.items()}, *relevance_from_labels(vlab, vlab, True), BASES)
            rel_all = [r - {int(q)} for r, q in zip(relevance_from_labels([lab[i] for i in te], lab)[0], te)]
            pos = {int(q): j for j, q in enumerate(te)}
            for pool, mm, rel, ex in (
                    ("fold", {s: M[np.ix_(te, te)] for s, M in m.items()}, [{pos[c] for c in r if c in pos} for r in rel_all],
                     [{j} for j in range(len(te))]),
                    ("corpus", {s: M[te] for s, M in m.items()}, rel_all, [{int(q)} for q in te])):
                r = out.setdefault(f"scirex/{aspect} ({pool})", {"pq": {}, "w": {}, "adapter": []})
                for f, pq in test_all(mm, rel, ex, ws, BASES).items():
                    r["pq"].setdefault(f, []).extend(pq)
                    r["w"].setdefault(f, []).append(ws.get(f))
                r["adapter"].append(info)
    return out


def main():
    t0 = time.time()
    generic = GenericMethod(CachedEncoder(MiniLMEncoder(), autosave=False))
    artifact = adapters._load(str(settings.ASPECT_ADAPTERS))
    prev = json.loads((ROOT / "var" / "bench" / "aspects-fusion.json").read_text())
    prev_th = json.loads((ROOT / "var" / "bench" / "aspects-finetune-generalise.json").read_text())["task_heldout"]["test"]
    log(f"artifact {artifact.version} (aspects_fusion ran with {prev['artifact']})")
    papers = load(PWC)
    G, peer = generic.encode(docs_of(papers)), TfidfSvmPeer(docs_of(papers))  # tf-idf fitted on all 2,625 pwc papers
    res = {**pwc(generic, artifact, G, peer, papers), **task_heldout(artifact, G, peer, papers)}
    res.update(scirex(generic, papers) if "--no-scirex" not in sys.argv else {})
    wall = time.time() - t0
    js, checks, rows = {}, [], []
    for key, r in res.items():
        t = {m: summarize(pq)["map_at_10"] for m, pq in r["pq"].items()}
        floor, old = max(t["generic"], t["peer"]), prev["results"].get(key, {}).get("test", {})
        checks += [(key, f"{tag(b, None)} == {b}+tfidf", t[tag(b, None)], t[b + "+tfidf"]) for b in BASES]
        checks += [(key, f"{f} vs aspects-fusion.json", t[f], old[f]["map_at_10"]) for f in t if f in old and "rrf" not in f]
        checks += [(key, f"{f} vs aspects-finetune-generalise.json", t[f], prev_th[f]["map_at_10"])
                   for f in ("generic", "peer") if "taskheldout" in key]
        js[key] = {"test": {m: summarize(pq) for m, pq in r["pq"].items()}, "w": r["w"], "max_baseline": floor,
                   "ratio": {m: v / floor for m, v in t.items()},
                   "ratio_ci95": {f: bootstrap_ratio(r["pq"], f) for f in r["pq"] if "tfidf" in f or f in BASES}
                   if key.startswith("pwc") else {},
                   "diff_ci95": {f"{tag(b, n)} - {b}{x}": boot_diff(r["pq"][tag(b, n)], r["pq"][b + x])
                                 for b in BASES for n in NS[:3] for x in ("", "+tfidf")},
                   **{x: r[x] for x in ("adapter", "papers") if x in r}}
        rows.append((key, summarize(r["pq"]["generic"])["n_queries"], t, floor, r["w"], js[key]))
    OUT.write_text(json.dumps({"seed": SEED, "grid": GRID, "ns": NS, "artifact": artifact.version, "protocol": __doc__,
                               "wall_time_s": wall, "results": js, "checks": checks}, indent=1, default=float))
    print(f"\nMAP@10 (test); cell = MAP ×(÷max(generic, peer)) [w from val; per fold for SciREX]. wall {wall:.0f} s\n\n"
          "| setting | q | generic | peer | base | alone | full pool | N=50 | N=100 | N=200 |\n|" + "---|" * 10)
    for key, q, t, floor, w, _ in rows:
        cell = lambda f: f"{t[f]:.3f} ×{t[f] / floor:.2f} [{'/'.join(f'{x:g}' for x in np.atleast_1d(w[f]))}]"  # noqa: E731
        for b in BASES:
            print(f"| {key} | {q} | {t['generic']:.3f} | {t['peer']:.3f} | {b}{' (LEAKY)' * ('held' in key and b != 'generic')} | "
                  f"{t[b]:.3f} ×{t[b] / floor:.2f} | {cell(b + '+tfidf')} | " + " | ".join(cell(tag(b, n)) for n in NS[:3]) + " |")
    print("\nCI95 of MAP(shortlist N) - MAP(full-pool fusion), paired bootstrap over queries\n\n| setting | base | "
          + " | ".join(f"N={n}" for n in NS[:3]) + " |\n|---|---|---|---|---|")
    for key, q, t, floor, w, j in rows:
        for b in BASES:
            print(f"| {key} | {b} | " + " | ".join("{:+.3f}..{:+.3f}".format(*j["diff_ci95"][f"{tag(b, n)} - {b}+tfidf"])
                                                 for n in NS[:3]) + " |")
    print("\nCI95 of MAP / max(generic, peer) (pwc):\n")
    for key, q, t, floor, w, j in rows:
        print("\n".join(f"- {key} {f}: {j['ratio'][f]:.2f} ({c[0]:.2f}-{c[1]:.2f})"
                        for f, c in j["ratio_ci95"].items() if f.endswith(("+tfidf", "@100"))))
    print("\nChecks:\n\n" + "\n".join(f"- {k} {what}: {a:.4f} vs {e:.4f} {'OK' if abs(a - e) < 5e-4 else 'DIFF'}"
                                       for k, what, a, e in checks))
    log(f"wrote {OUT}")


if __name__ == "__main__":
    main()
