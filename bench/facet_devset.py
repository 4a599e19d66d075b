"""Our faceted query-by-example dev set (docs/faceted-dev-set.md), built from data we have.

A query is a paper and a facet; candidates are the other papers of the same corpus, graded:

- SciREX (../shared/data/scirex-aspects: salient tasks / methods / datasets / metrics and the
  (task, dataset, method, metric) result relations per paper; papers whose abstract could be
  cut from the full text only):
    background  2 = shares a task and a dataset (the same problem on the same data),
                1 = shares a task
    method      2 = shares a method (its base name, bench.common.method_base) and a task,
                1 = shares a method
    result      2 = shares a reported (dataset, metric) pair and a task,
                1 = shares a (dataset, metric) pair
- Papers with Code (../shared/data/pwc-tasks), background only: 1 = the same task (binary;
  the pwc_split test papers ranked among themselves, as `bench aspects` does).

Queries are the papers with at least one graded candidate; bench.common.facet_query_split
halves the SciREX query papers into validation (choices) and test (reports).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.common import method_base

FACETS = ("background", "method", "result")


@dataclass
class FacetSet:
    name: str
    papers: list[dict]  # title, abstract (candidates = every paper)
    grades: dict[str, list[dict[int, int]]]  # facet -> per paper: {candidate index: grade}


def _norm(values) -> set[str]:
    return {str(v).strip().lower() for v in values if str(v).strip()}


def scirex_set(rows: list[dict]) -> FacetSet:
    papers = [r for r in rows if r.get("abstract_ok", True) and r.get("abstract")]
    tasks = [_norm(p["tasks"]) for p in papers]
    datasets = [_norm(p["datasets"]) for p in papers]
    methods = [{method_base(m) for m in p["methods"]} - {""} for p in papers]
    results = [{(str(r.get("Material", "")).lower(), str(r.get("Metric", "")).lower())
                for r in p.get("n_ary_relations", []) if r.get("Material") and r.get("Metric")}
               for p in papers]
    entity = {"background": tasks, "method": methods, "result": results}
    second = {"background": datasets, "method": tasks, "result": tasks}
    grades: dict[str, list[dict[int, int]]] = {}
    for facet in FACETS:
        first, extra = entity[facet], second[facet]
        per = []
        for i in range(len(papers)):
            g = {}
            for j in range(len(papers)):
                if i != j and first[i] & first[j]:
                    g[j] = 2 if extra[i] & extra[j] else 1
            per.append(g)
        grades[facet] = per
    return FacetSet("scirex", [{"title": p["title"], "abstract": p["abstract"]} for p in papers], grades)


def pwc_background_set(papers: list[dict]) -> FacetSet:
    """The pwc papers given (one split) ranked among themselves, same task = 1."""
    per = [{j: 1 for j, q in enumerate(papers) if j != i and q["task"] == p["task"]}
           for i, p in enumerate(papers)]
    return FacetSet("pwc", [{"title": p["title"], "abstract": p["abstract"]} for p in papers],
                    {"background": per})


def describe(fs: FacetSet, queries=None) -> dict:
    """Queries (papers with >= 1 graded candidate), mean relevant and grade-2 share per facet."""
    out = {}
    for facet, per in fs.grades.items():
        idx = range(len(per)) if queries is None else queries
        q = [i for i in idx if per[i]]
        rel = [len(per[i]) for i in q]
        two = sum(sum(1 for g in per[i].values() if g == 2) for i in q)
        out[facet] = {"queries": len(q), "mean_relevant": round(sum(rel) / max(len(q), 1), 1),
                      "grade2_share": round(two / max(sum(rel), 1), 2)}
    return out
