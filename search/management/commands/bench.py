"""Benchmarks (numbers belong here, not in tests). Results go to docs/benchmarks.md.

    python manage.py bench embed  [--n 512]        docs/s of the embedding pipeline
    python manage.py bench search [--queries 200]  search latency p50/p95 per mode
    python manage.py bench similar [--papers 40]   "similar by aspect" latency per rerank variant

Alternatives are measured side by side in one run, interleaved, so that the ratios hold on a
noisy machine even when absolute times do not.
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from search import services
from search.embedders import get_encoder, paper_text
from search.models import Paper
from search.params import SearchFilters, SearchParams
from search.planner import count_matching
from search.selectors import active_space, paper_search


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('server_version'), "
                       "(SELECT extversion FROM pg_extension WHERE extname = 'vector')")
        pg, vector = cursor.fetchone()
    return (f"{cpu}, {os.cpu_count()} cores{mem}; Python {platform.python_version()}; "
            f"Postgres {pg}, pgvector {vector}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


class Command(BaseCommand):
    help = ("Benchmarks: `bench embed` (docs/s), `bench search` (latency per mode), "
            "`bench modes` (retrieval quality per mode, to pick the default).")

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="what", required=True)
        embed = sub.add_parser("embed", help="docs/s of encode + write, per batch size")
        embed.add_argument("--n", type=int, default=512)
        embed.add_argument("--batch-sizes", default="16,32,64")
        embed.add_argument("--rounds", type=int, default=2)
        embed.add_argument("--aspects", action="store_true",
                           help="also time the aspect vectors (task, method, dataset)")
        search = sub.add_parser("search", help="search latency p50/p95 on the loaded corpus")
        search.add_argument("--queries", type=int, default=200)
        search.add_argument("--k", type=int, default=10)
        modes = sub.add_parser("modes", help="known-item retrieval quality per search mode")
        modes.add_argument("--queries", type=int, default=200)
        similar = sub.add_parser("similar", help="'similar by aspect' latency: vector only vs "
                                 "reranked by words, concepts, both")
        similar.add_argument("--papers", type=int, default=40)
        similar.add_argument("--passes", type=int, default=3)
        for p in (embed, search, modes, similar):
            p.add_argument("--json", type=Path, help="also write the results here")
            p.add_argument("--seed", type=int, default=7)

    def handle(self, *args, what, **options):
        if not Paper.objects.exists():
            raise CommandError("no papers loaded: run `make run` once (or manage.py ingest)")
        self.stdout.write(f"machine: {machine()}")
        results = getattr(self, f"bench_{what}")(**options)
        if options.get("json"):
            options["json"].write_text(json.dumps(results, indent=2, default=str))

    # --- embedding ----------------------------------------------------------------------------
    def bench_embed(self, *, n, batch_sizes, rounds, seed, aspects, **_):
        """The worker's path: encode a batch, then write vector + halfvec + bit copies.

        Writes go to a throwaway space inside a transaction that is rolled back."""
        random.seed(seed)
        ids = list(Paper.objects.values_list("pk", flat=True))
        sample = random.sample(ids, min(n, len(ids)))
        encoder = get_encoder()
        get_encoder().encode(["warm up"])
        sizes = [int(s) for s in batch_sizes.split(",")]
        timings: dict[int, list[float]] = {size: [] for size in sizes}
        for _ in range(rounds):
            for size in sizes:  # interleaved rounds: noise hits every variant alike
                started = time.perf_counter()
                with transaction.atomic():
                    spaces = [services.EmbeddingSpace.objects.create(
                        name=f"bench-{size}-{aspect}-{time.time_ns()}", model_name=encoder.name,
                        model_version=f"bench-{time.time_ns()}", dimension=encoder.dimension,
                        aspect=aspect, is_active=False)
                        for aspect in ["generic", *(settings.ASPECTS if aspects else [])]]
                    old = settings.EMBEDDING_BATCH_SIZE
                    settings.EMBEDDING_BATCH_SIZE = size
                    try:
                        for start in range(0, len(sample), settings.EMBEDDING_TASK_CHUNK):
                            services.papers_embed(
                                paper_ids=sample[start:start + settings.EMBEDDING_TASK_CHUNK],
                                spaces=spaces)
                    finally:
                        settings.EMBEDDING_BATCH_SIZE = old
                    transaction.set_rollback(True)
                timings[size].append(len(sample) / (time.perf_counter() - started))
        what = "generic + " + "/".join(settings.ASPECTS) if aspects else "generic only"
        self.stdout.write(f"\nembedding pipeline ({encoder.name}; {what}), {len(sample)} papers, "
                          f"{rounds} interleaved rounds; docs/s (median):")
        rows = []
        for size in sizes:
            rate = statistics.median(timings[size])
            rows.append({"batch_size": size, "docs_per_s": round(rate, 1)})
            self.stdout.write(f"  batch {size:>3}: {rate:7.1f} docs/s")
        texts = list(Paper.objects.filter(pk__in=sample[:128]).values_list("title", "abstract"))
        started = time.perf_counter()
        encoder.encode([paper_text(t, a) for t, a in texts], batch_size=32)
        encode_only = len(texts) / (time.perf_counter() - started)
        self.stdout.write(f"  encode only (batch 32, {len(texts)} papers): {encode_only:.1f} docs/s")
        return {"model": encoder.name, "papers": len(sample), "pipeline": rows,
                "encode_only_docs_per_s": round(encode_only, 1)}

    # --- search ----------------------------------------------------------------------------------
    def bench_search(self, *, queries, k, seed, **_):
        space = active_space()
        if space is None:
            raise CommandError("no active embedding space yet: wait for the worker")
        random.seed(seed)
        papers = list(Paper.objects.values_list("title", "categories"))
        picked = random.sample(papers, min(queries, len(papers)))
        # Queries: the first words of real titles (what users type), and a category filter
        # taken from the same paper for the filtered variant.
        workload = [(" ".join(title.split()[:6]), cats[0] if cats else "") for title, cats in picked]
        variants = {
            "semantic": lambda q, c: SearchParams(query=q, k=k, mode="semantic"),
            "keyword": lambda q, c: SearchParams(query=q, k=k, mode="keyword"),
            "hybrid": lambda q, c: SearchParams(query=q, k=k, mode="hybrid"),
            "semantic+category": lambda q, c: SearchParams(
                query=q, k=k, mode="semantic", filters=SearchFilters(categories=(c,))),
            "hybrid+category": lambda q, c: SearchParams(
                query=q, k=k, mode="hybrid", filters=SearchFilters(categories=(c,))),
        }
        for q, _c in workload:  # encode once: the embedding cache is per process, as in the web
            paper_search(params=SearchParams(query=q, k=1, mode="semantic"))
        latencies: dict[str, list[float]] = {name: [] for name in variants}
        short: dict[str, int] = {name: 0 for name in variants}
        for q, c in workload:
            for name, make in variants.items():
                params = make(q, c)
                started = time.perf_counter()
                result = paper_search(params=params)
                latencies[name].append((time.perf_counter() - started) * 1000)
                # "short" = fewer than min(k, papers matching the filters); keyword search
                # needs every query word, so it is not expected to fill k.
                expected = min(k, count_matching(params.filters, cap=k))
                short[name] += len(result.results) < expected
        total = Paper.objects.count()
        self.stdout.write(f"\nsearch latency over {len(workload)} queries, k={k}, {total} papers, "
                          f"space {space.name} (query encoding cached; ms):")
        self.stdout.write(f"  {'variant':<20} {'p50':>7} {'p95':>7} {'short':>6}  (short: fewer "
                          "than min(k, matching papers))")
        rows = []
        for name, values in latencies.items():
            row = {"variant": name, "p50_ms": round(percentile(values, 50), 2),
                   "p95_ms": round(percentile(values, 95), 2), "short_results": short[name]}
            rows.append(row)
            self.stdout.write(f"  {name:<20} {row['p50_ms']:>7} {row['p95_ms']:>7} "
                              f"{short[name]:>6}")
        started = time.perf_counter()
        for q, _ in workload[:50]:
            get_encoder(space.model_name).encode([q + " uncached"])
        encode_ms = (time.perf_counter() - started) * 1000 / min(50, len(workload))
        self.stdout.write(f"  query encoding (uncached): {encode_ms:.1f} ms per query")
        return {"papers": total, "queries": len(workload), "k": k, "rows": rows,
                "query_encode_ms": round(encode_ms, 1)}

    # --- similar by aspect -------------------------------------------------------------------
    def bench_similar(self, *, papers, passes, seed, **_):
        from recommend import lexical
        from recommend.selectors import paper_similar_explained
        from search.selectors import aspect_names, concept_weights

        if lexical.current() is None:
            self.stdout.write("note: no tf-idf fit yet (manage.py fit_lexical): 'words' is a no-op")
        if not concept_weights().idf:
            self.stdout.write("note: concepts not counted yet (manage.py refresh_concepts)")
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
        variants = {name: {a: w for a in shipped} for name, w in variants.items()}
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
                            paper_similar_explained(paper=paper, aspect=aspect, k=10,
                                                    filters=SearchFilters())
                            latencies[name].append((time.perf_counter() - started) * 1000)
                            if weights is shipped:
                                per_aspect[aspect].append(latencies[name][-1])
        finally:
            settings.RERANK_WEIGHTS = shipped
        total = Paper.objects.count()
        self.stdout.write(f"\n'similar' latency, {len(picked)} papers x {len(aspects)} aspects x "
                          f"{passes} passes, k=10, shortlist {settings.RERANK_SHORTLIST}, "
                          f"{total} papers (ms):")
        rows = []
        for name, values in latencies.items():
            row = {"variant": name, "p50_ms": round(percentile(values, 50), 2),
                   "p95_ms": round(percentile(values, 95), 2)}
            rows.append(row)
            self.stdout.write(f"  {name:<28} p50 {row['p50_ms']:>7}  p95 {row['p95_ms']:>7}")
        shipped_p50 = {a: round(percentile(v, 50), 2) for a, v in per_aspect.items() if v}
        self.stdout.write("  shipped, p50 per aspect: "
                          + ", ".join(f"{a} {v}" for a, v in shipped_p50.items()))
        return {"papers": total, "sampled": len(picked), "aspects": aspects, "rows": rows,
                "shipped_p50_per_aspect": shipped_p50}

    # --- search modes ------------------------------------------------------------------------
    def bench_modes(self, *, queries, seed, **_):
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
        self.stdout.write(f"\nknown-item search, {len(picked)} papers per query kind, k=10:")
        self.stdout.write(f"  {'query kind':<18} {'mode':<16} {'MRR@10':>7} {'hit@10':>7}")
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
                self.stdout.write(f"  {kind:<18} {name:<16} {row['mrr_at_10']:>7} "
                                  f"{row['hit_at_10']:>7}")
        return {"papers": len(picked), "rows": rows}
