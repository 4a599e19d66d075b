"""Facets (background / method / result) on our faceted dev set: what "similar by facet" serves
against generic, the arxiv-sanity-lite peer, the old aspect mapping and the sentence signals.

    python manage.py bench aspects-facets        # ~3 min on 2 cores (sentence encoding)

The dev set (bench.facet_devset, docs/faceted-dev-set.md): SciREX papers graded per facet,
query papers halved into validation and test (bench.common.facet_query_split); PwC papers,
background = same task, on pwc_split's test papers (report only). Rows, per facet:

- generic: cosine of the generic embeddings (torch MiniLM, as `bench aspects`);
- peer: arxiv-sanity-lite's tf-idf + SVM (bench.peer);
- generic ranking: what "similar" (generic) serves: the generic vector's top N = 100 reranked
  with settings.RERANK_WEIGHTS["generic"] (words + found names) through recommend.rerank's
  fused_scores: the floor every facet is held to;
- aspects (old map): the same with the mapped aspect's rerank weights (background -> task,
  method -> method, result -> dataset) on the generic vector: the adapters are left out here
  because the shipped ones were trained on every SciREX paper;
- role centroid: cosine of the mean facet-sentence vectors; MaxSim: search.multivector's over
  the facet sentences (roles by search.roles.load_role_classifier, vectors by the product's
  encoder: search.services.sentences' path); FDE + MaxSim: the top N by the MUVERA encodings'
  dot product (search.multivector.fde_query / fde_document) reranked by exact MaxSim;
- fusion w: the generic ranking + w * z(MaxSim) (recommend.facets.facet_signal) on the
  shortlist, for w in GRID; "shipped": settings.FACET_WEIGHTS; "val choice": the w with the
  best validation NDCG%20, shrunk to 0 unless its paired bootstrap CI95 against the generic
  ranking on validation is above 1 (the floor rule).

P@10, MAP@10, nDCG@10 on grade >= 1, NDCG%20 (nDCG@20, graded gains) and the CI95 of the
ratio to generic (paired bootstrap over queries, bench.metrics). Writes var/bench/aspects-facets.json.
"""

from __future__ import annotations

import time

import numpy as np

from bench.common import OUT, PWC, SCX, SEED, facet_query_split, log, pwc_split, read_jsonl, require_data, write_json
from bench.facet_devset import FACETS, FacetSet, describe, pwc_background_set, scirex_set
from bench.metrics import bootstrap_paired, graded_metrics, summarize_graded

HELP = "faceted dev set (background / method / result): generic, peer, aspects, MaxSim, FDE, shipped fusion"
N = 100  # the shortlist (settings.RERANK_SHORTLIST)
GRID = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
OLD_MAP = {"background": "task", "method": "method", "result": "dataset"}
FLOOR = "generic ranking"


def add_arguments(parser):
    parser.add_argument("--no-pwc", action="store_true", help="skip the PwC background set")


class Sentences:
    """Per paper: its stored sentences' vectors and roles, computed the product's way."""

    def __init__(self, docs: list[dict]):
        from django.conf import settings

        from search.embedders import get_encoder
        from search.roles import load_role_classifier
        from search.services.sentences import sentence_texts

        encoder = get_encoder(settings.EMBEDDING_MODEL)
        classifier = load_role_classifier(encoder)
        self.classifier = type(classifier).__name__ + ":" + str(getattr(classifier, "version", ""))
        texts = [sentence_texts(d["title"], d["abstract"]) for d in docs]
        flat = [t for ts in texts for t in ts]
        t0 = time.time()
        encoded = np.asarray(encoder.encode(flat), dtype=np.float32)
        self.encode_s = time.time() - t0
        self.n_sentences = len(flat)
        self.vectors, self.roles, start = [], [], 0
        for ts in texts:
            v = encoded[start:start + len(ts)]
            start += len(ts)
            self.vectors.append(v)
            self.roles.append(list(classifier.classify(ts, v)) if len(ts) else [])

    def facet(self, i: int, facet: str) -> np.ndarray:
        from search.roles import facet_rows

        return self.vectors[i][facet_rows(self.roles[i], facet)[0]]


def maxsim_matrix(S: Sentences, facet: str, queries, cands) -> np.ndarray:
    from search.multivector import maxsim_many

    docs = [S.facet(j, facet) for j in cands]
    return np.vstack([maxsim_many(S.facet(i, facet), docs) for i in queries]).astype(np.float64)


def centroid_matrix(S: Sentences, facet: str, queries, cands) -> np.ndarray:
    def mean(i):
        v = S.facet(i, facet).mean(axis=0)
        return v / max(float(np.linalg.norm(v)), 1e-12)

    C = np.vstack([mean(j) for j in cands])
    return np.vstack([mean(i) for i in queries]) @ C.T


def fde_rerank(S: Sentences, facet: str, queries, cands, exact: np.ndarray) -> np.ndarray:
    from search.multivector import fde_document, fde_query

    D = np.vstack([fde_document(S.facet(j, facet)) for j in cands])
    Q = np.vstack([fde_query(S.facet(i, facet)) for i in queries])
    approx = Q @ D.T
    out = approx - 1e3  # below: FDE order; top N: exact MaxSim
    top = np.argsort(-approx, axis=1)[:, :N]
    np.put_along_axis(out, top, np.take_along_axis(exact, top, axis=1), axis=1)
    return out


def names_cosine(docs, kinds):
    from search import concepts

    idx = concepts.ConceptIndex.fit([concepts.paper_concepts(d["title"], d["abstract"]) for d in docs])
    M = idx.matrix(kinds)
    return (M @ M.T).toarray()


def rerank_matrix(base, words, names_by_kinds, near, aspect, ex, extra=None):
    """recommend.rerank.fused_scores with settings.RERANK_WEIGHTS[aspect] over each row's top N
    by `base` (+ `extra`: a facet term over the same shortlist); the rest below in base order."""
    from recommend import rerank
    from search import concepts

    w = rerank.weights(aspect)
    kinds = tuple(w["kinds"]) or concepts.KINDS
    B = base.copy()
    for i, e in enumerate(ex):
        B[i, list(e)] = -np.inf
    top = np.argsort(-B, axis=1, kind="stable")[:, :N]

    def take(M):
        return None if M is None else np.take_along_axis(np.asarray(M, dtype=np.float64), top, axis=1)

    fused = rerank.fused_scores(take(base), words=take(words), named=take(names_by_kinds[kinds]),
                                nearest=take(near), w_words=w["words"], w_concepts=w["concepts"],
                                w_nearest=w["nearest"])
    if extra is not None:
        term = extra(top)
        if term is not None:
            fused = fused + term
    out = base - 1e3
    np.put_along_axis(out, top, fused, axis=1)
    return out


def evaluate_set(fs: FacetSet, S: Sentences, G, peer, splits: dict[str, np.ndarray], nearest) -> dict:
    from recommend import facets as product_facets
    from search import concepts

    docs = fs.papers
    n = len(docs)
    cands = np.arange(n)
    names = {k: names_cosine(docs, k) for k in {("task", "dataset"), ("dataset",), ("task",), concepts.KINDS}}
    words = (peer.X @ peer.X.T).toarray()
    near = nearest(G)
    near = near @ near.T
    out: dict = {}
    for facet, grades in fs.grades.items():
        exact = maxsim_matrix(S, facet, cands, cands)
        rows = {"generic": G @ G.T, "peer": None, "role centroid": centroid_matrix(S, facet, cands, cands),
                "MaxSim": exact, "FDE + MaxSim": fde_rerank(S, facet, cands, cands, exact)}
        ex = [{i} for i in range(n)]
        rows[FLOOR] = rerank_matrix(rows["generic"], words, names, near, "generic", ex)
        rows["aspects (old map)"] = rerank_matrix(rows["generic"], words, names, near, OLD_MAP[facet], ex)

        def with_weights(w, exact):
            return lambda top: product_facets.facet_signal(w, 1.0, np.take_along_axis(exact, top, axis=1), None)

        def with_maxsim(w, exact=exact):
            return lambda top: product_facets.facet_signal({"maxsim": w, "aspect": 0.0}, 1.0,
                                                           np.take_along_axis(exact, top, axis=1), None)

        for w in GRID[1:]:
            rows[f"fusion w={w:g}"] = rerank_matrix(rows["generic"], words, names, near, "generic", ex,
                                                    with_maxsim(w))
        shipped = product_facets.weights(facet)
        rows["shipped"] = rerank_matrix(rows["generic"], words, names, near, "generic", ex,
                                        with_weights(shipped, exact))
        per_split = {}
        for split, queries in splits.items():
            q = [int(i) for i in queries if grades[int(i)]]
            if not q:
                continue
            pq = {}
            for row, M in rows.items():
                if row == "peer":
                    M = np.zeros((n, n))
                    M[q] = peer.scores(q, cands)[0]
                pq[row] = graded_metrics(M[q], [grades[i] for i in q], [{i} for i in q])
            per_split[split] = pq
        out[facet] = per_split
        log(f"{fs.name}/{facet} done")
    return out


def choose(val: dict[str, list[dict]]) -> tuple[float, list[float], float]:
    """(w, CI95 of its ratio to the floor on validation, raw best w): the best validation
    NDCG%20 among the fusion rows, kept only if the CI's lower bound is above 1."""
    scored = [(0.0, float(np.mean([q["ndcg20"] for q in val[FLOOR]])))]
    scored += [(w, float(np.mean([q["ndcg20"] for q in val[f"fusion w={w:g}"]]))) for w in GRID[1:]]
    best = max(scored, key=lambda c: (c[1], -c[0]))[0]
    if best == 0.0:
        return 0.0, [1.0, 1.0], 0.0
    ci = bootstrap_paired(val, f"fusion w={best:g}", FLOOR)
    return (best if ci[0] > 1.0 else 0.0), ci, best


def table(name: str, facet: str, pq: dict[str, list[dict]], chosen: float | None) -> list[str]:
    lines = []
    rows = [r for r in pq if not r.startswith("fusion w=")]
    if chosen:
        rows.append(f"fusion w={chosen:g}")
    for row in rows:
        m = summarize_graded(pq[row])
        lo, hi = bootstrap_paired(pq, row, "generic") if row != "generic" else (1.0, 1.0)
        flo, fhi = bootstrap_paired(pq, row, FLOOR) if row != FLOOR else (1.0, 1.0)
        lines.append(f"| {name}/{facet} | {m['n_queries']} | {row} | {m['p_at_10']:.3f} | {m['map_at_10']:.3f} | "
                     f"{m['ndcg_at_10']:.3f} | {m['ndcg_20']:.3f} | {lo:.2f}-{hi:.2f} | {flo:.2f}-{fhi:.2f} |")
    return lines


def run(command, *, no_pwc=False, **_):
    from bench.aspect_methods import GenericMethod
    from bench.aspects import nearest_task_weights
    from bench.common import docs_of
    from bench.encoders import CachedEncoder, MiniLMEncoder
    from bench.peer import TfidfSvmPeer

    require_data(SCX, PWC)
    t0 = time.time()
    generic = GenericMethod(CachedEncoder(MiniLMEncoder()))
    sets = [(scirex_set(read_jsonl(SCX)), None)]
    if not no_pwc:
        pwc = read_jsonl(PWC)
        _, _, te = pwc_split(len(pwc), SEED)
        sets.append((pwc_background_set([pwc[i] for i in te]), "test"))
    say = command.stdout.write
    results, js = {}, {}
    for fs, only in sets:
        S = Sentences(fs.papers)
        log(f"{fs.name}: {len(fs.papers)} papers, {S.n_sentences} sentences encoded in {S.encode_s:.1f} s "
            f"({len(fs.papers) / max(S.encode_s, 1e-9):.0f} papers/s), roles by {S.classifier}")
        G = generic.encode(docs_of(fs.papers))
        splits = facet_query_split(len(fs.papers)) if only is None else {"test": np.arange(len(fs.papers))}
        results[fs.name] = evaluate_set(fs, S, G, TfidfSvmPeer(fs.papers), splits, nearest_task_weights)
        js[fs.name] = {"describe": {s: describe(fs, q) for s, q in splits.items()},
                       "sentences": S.n_sentences, "encode_s": S.encode_s, "roles": S.classifier}
    choices = {}
    for facet in FACETS:
        val = results["scirex"][facet].get("val")
        if val:
            choices[facet] = choose(val)
    say(f"\nFaceted dev set, test split (wall {time.time() - t0:.0f} s). CI95 = paired bootstrap of the "
        "NDCG%20 ratio.\n\n")
    say("| set/facet | q | ranking | P@10 | MAP@10 | nDCG@10 | NDCG%20 | CI95 ÷ generic | CI95 ÷ generic ranking |\n")
    say("|" + "---|" * 9 + "\n")
    for name, by_facet in results.items():
        for facet, per_split in by_facet.items():
            if "test" in per_split:
                chosen = choices.get(facet, (0.0,))[0]
                say("\n".join(table(name, facet, per_split["test"], chosen)) + "\n")
                js[name][facet] = {s: {r: summarize_graded(v) for r, v in pq.items()} for s, pq in per_split.items()}
    say("\nValidation choice per facet (w of z(MaxSim); 0 = the generic ranking):\n")
    for facet, (w, ci, raw) in choices.items():
        say(f"- {facet}: best w {raw:g} (val CI95 ÷ generic ranking {ci[0]:.3f}-{ci[1]:.3f}) -> shipped w {w:g}\n")
    js["choices"] = {f: {"w": w, "val_ci95": ci, "best": raw} for f, (w, ci, raw) in choices.items()}
    js["wall_s"] = time.time() - t0
    path = OUT / "aspects-facets.json"
    write_json(path, js)
    log(f"wrote {path}")
