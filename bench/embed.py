"""Embedding pipeline throughput (docs/benchmarks.md "Embedding pipeline").

The worker's path on the loaded corpus: encode a chunk, then write float + halfvec + bit copies,
inside a rolled-back transaction into throw-away spaces; per batch size, rounds interleaved so
noise falls on every variant alike. With --aspects the task / method / dataset vectors too.
"""

from __future__ import annotations

import random
import statistics
import time

from django.conf import settings
from django.db import transaction

from bench.demo import add_demo_arguments, run_on_demo
from search import services
from search.embedders import get_encoder, paper_text
from search.models import Paper

HELP = "docs/s of encode + write per batch size on the loaded corpus"


def add_arguments(parser):
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--batch-sizes", default="16,32,64")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--aspects", action="store_true",
                        help="also time the aspect vectors (task, method, dataset)")
    add_demo_arguments(parser)


def run(command, **options):
    run_on_demo(command, measure, options)


def measure(out, *, n, batch_sizes, rounds, seed, aspects, **_):
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
    out(f"\nembedding pipeline ({encoder.name}; {what}), {len(sample)} papers, "
                      f"{rounds} interleaved rounds; docs/s (median):")
    rows = []
    for size in sizes:
        rate = statistics.median(timings[size])
        rows.append({"batch_size": size, "docs_per_s": round(rate, 1)})
        out(f"  batch {size:>3}: {rate:7.1f} docs/s")
    texts = list(Paper.objects.filter(pk__in=sample[:128]).values_list("title", "abstract"))
    started = time.perf_counter()
    encoder.encode([paper_text(t, a) for t, a in texts], batch_size=32)
    encode_only = len(texts) / (time.perf_counter() - started)
    out(f"  encode only (batch 32, {len(texts)} papers): {encode_only:.1f} docs/s")
    return {"model": encoder.name, "papers": len(sample), "pipeline": rows,
            "encode_only_docs_per_s": round(encode_only, 1)}
