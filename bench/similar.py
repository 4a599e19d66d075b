"""'Similar by aspect' latency per rerank variant (docs/benchmarks.md "Nearest names", "Cost").

The same sampled papers, every aspect, every variant interleaved: the vector alone, reranked by
words, by concepts (found names, then with nearest names), both, and the shipped weights
(settings.RERANK_WEIGHTS).
"""

from __future__ import annotations

import random
import time

from django.conf import settings

from bench.common import percentile
from bench.demo import add_demo_arguments, run_on_demo
from search.models import Paper
from search.params import SearchFilters

HELP = "'similar by aspect' latency: vector only vs reranked by words, concepts, both, shipped"


def add_arguments(parser):
    parser.add_argument("--papers", type=int, default=40)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--http", action="store_true",
                        help="over HTTP instead (bench/similar_http.py): GET .../similar for every "
                             "aspect and POST /api/v1/recommend, 1 client, against make run's gunicorn")
    parser.add_argument("--database-url", default=None, help="--http: serve this database")
    parser.add_argument("--port", type=int, default=None, help="--http: the server's port")
    add_demo_arguments(parser)


def run(command, **options):
    if options["http"]:
        from bench.similar_http import measure_http

        run_on_demo(command, measure_http, options)
        return
    run_on_demo(command, measure, options)


def measure(out, *, papers, passes, seed, **_):
    from recommend import lexical
    from recommend.ordering import similar
    from search.selectors import aspect_names, concept_weights

    if lexical.current() is None:
        out("note: no tf-idf fit yet (manage.py fit_lexical): 'words' is a no-op")
    if not concept_weights().idf:
        out("note: concepts not counted yet (manage.py refresh_concepts)")
    random.seed(seed)
    ids = list(Paper.objects.values_list("pk", flat=True))
    picked = list(Paper.objects.filter(pk__in=random.sample(ids, min(papers, len(ids)))))
    shipped = settings.RERANK_WEIGHTS
    kinds = ("task", "dataset")
    variants = {  # the same weights for every aspect, and the shipped table
        "vector only": {"words": 0.0, "concepts": 0.0, "kinds": kinds},
        "words": {"words": 1.0, "concepts": 0.0, "kinds": kinds},
        "concepts": {"words": 0.0, "concepts": 1.0, "kinds": kinds},
        "concepts + nearest names": {"words": 0.0, "concepts": 1.0, "kinds": kinds, "nearest": 1.0},
        "words + concepts": {"words": 1.0, "concepts": 1.0, "kinds": kinds},
    }
    variants = {name: dict.fromkeys(shipped, w) for name, w in variants.items()}
    variants["shipped (settings)"] = shipped
    aspects = aspect_names()
    latencies: dict[str, list[float]] = {name: [] for name in variants}
    per_aspect: dict[str, list[float]] = {a: [] for a in aspects}
    try:
        for _ in range(passes):  # interleaved: every variant sees the same cache state
            for paper in picked:
                for aspect in aspects:
                    for name, weights in variants.items():
                        settings.RERANK_WEIGHTS = weights
                        started = time.perf_counter()
                        similar(paper=paper, aspect=aspect, k=10, filters=SearchFilters())
                        latencies[name].append((time.perf_counter() - started) * 1000)
                        if weights is shipped:
                            per_aspect[aspect].append(latencies[name][-1])
    finally:
        settings.RERANK_WEIGHTS = shipped
    total = Paper.objects.count()
    out(f"\n'similar' latency, {len(picked)} papers x {len(aspects)} aspects x "
                      f"{passes} passes, k=10, shortlist {settings.RERANK_SHORTLIST}, "
                      f"{total} papers (ms):")
    rows = []
    for name, values in latencies.items():
        row = {"variant": name, "p50_ms": round(percentile(values, 50), 2),
               "p95_ms": round(percentile(values, 95), 2)}
        rows.append(row)
        out(f"  {name:<28} p50 {row['p50_ms']:>7}  p95 {row['p95_ms']:>7}")
    shipped_p50 = {a: round(percentile(v, 50), 2) for a, v in per_aspect.items() if v}
    out("  shipped, p50 per aspect: "
                      + ", ".join(f"{a} {v}" for a, v in shipped_p50.items()))
    return {"papers": total, "sampled": len(picked), "aspects": aspects, "rows": rows,
            "shipped_p50_per_aspect": shipped_p50}
