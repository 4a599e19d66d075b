"""Search modes: known-item retrieval quality per mode, to choose the default
(docs/benchmarks.md "Search modes").
"""

from __future__ import annotations

import random

from django.core.management.base import CommandError

from bench.demo import add_demo_arguments, run_on_demo
from search.models import Paper
from search.params import SearchParams
from search.selectors import active_space, paper_search

HELP = "known-item retrieval quality (MRR@10, hit@10) per search mode, to pick the default"


def add_arguments(parser):
    parser.add_argument("--queries", type=int, default=200)
    add_demo_arguments(parser)


def run(command, **options):
    run_on_demo(command, measure, options)


def measure(out, *, queries, seed, **_):
    """Known-item search: can each mode find a paper from a description of it?

    Two query kinds per sampled paper: its title (what users paste) and the last sentence
    of its abstract with the title removed (a description in other words). MRR@10 and
    hit@10 per mode; hybrid at several semantic weights.
    """
    from search.ingest import _WS
    from search.sentences import split_sentences

    if active_space() is None:
        raise CommandError("no active embedding space yet: wait for the worker")
    random.seed(seed)
    papers = list(Paper.objects.values_list("pk", "title", "abstract"))
    picked = random.sample(papers, min(queries, len(papers)))
    kinds = {
        "title": [(pk, _WS.sub(" ", title)) for pk, title, _ in picked],
        "abstract sentence": [(pk, (split_sentences(abstract) or [abstract])[-1][:300])
                              for pk, _, abstract in picked],
    }
    variants = {"keyword": ("keyword", 0.5), "semantic": ("semantic", 0.5)}
    for weight in (0.3, 0.5, 0.7):
        variants[f"hybrid w={weight}"] = ("hybrid", weight)
    rows = []
    out(f"\nknown-item search, {len(picked)} papers per query kind, k=10:")
    out(f"  {'query kind':<18} {'mode':<16} {'MRR@10':>7} {'hit@10':>7}")
    for kind, workload in kinds.items():
        for name, (mode, weight) in variants.items():
            reciprocal, hits = 0.0, 0
            for pk, text in workload:
                result = paper_search(params=SearchParams(
                    query=text, k=10, mode=mode, semantic_weight=weight))
                ids = [r.paper.pk for r in result.results]
                if pk in ids:
                    hits += 1
                    reciprocal += 1.0 / (ids.index(pk) + 1)
            row = {"kind": kind, "mode": name, "mrr_at_10": round(reciprocal / len(workload), 3),
                   "hit_at_10": round(hits / len(workload), 3)}
            rows.append(row)
            out(f"  {kind:<18} {name:<16} {row['mrr_at_10']:>7} "
                              f"{row['hit_at_10']:>7}")
    return {"papers": len(picked), "rows": rows}
