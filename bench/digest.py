"""The reader's loop at scale on the loaded corpus: the feed request and a digest run for many
readers (docs/benchmarks.md "Reader feed: cost").

    python manage.py bench digest                  # 1,000 readers, ~2-4 min on 2 cores

Inside one transaction that is rolled back at the end (the database is left as it was), with
mail going to Django's in-memory backend:
- N readers, each with a library of --library-size papers drawn at random, weekly digests;
- --models distinct libraries trained by the workers' code (recommend.training.train: timed),
  the other readers' libraries copies of them with the same model (what a large instance has:
  many models, each trained once);
- the feed request, GET /api/v1/feed?library=&k=20 through Django's test client (in process:
  the selector, serialisation and the queries, no HTTP), p50 / p95 over the trained readers;
- the digest run as the worker does it (recommend.digests.send per reader, one process): total
  time, per reader p50 / p95, mails; then the same run again, which must send nothing.
"""

from __future__ import annotations

import random
import time

from bench.common import ms_stats
from bench.demo import add_demo_arguments, run_on_demo

HELP = "the reader's loop: feed request p50/p95 and a digest run for 1,000 readers"


class _RollBack(Exception):
    pass


def add_arguments(parser):
    parser.add_argument("--readers", type=int, default=1000)
    parser.add_argument("--models", type=int, default=40, help="distinct libraries trained")
    parser.add_argument("--library-size", type=int, default=8)
    parser.add_argument("--feed-passes", type=int, default=3)
    add_demo_arguments(parser)


def run(command, **options):
    run_on_demo(command, measure, options)


def measure(out, *, readers, models, library_size, feed_passes, seed, **_):
    from django.db import transaction

    results: dict = {}
    try:
        with transaction.atomic():
            results = _measure(out, readers, models, library_size, feed_passes, seed)
            raise _RollBack
    except _RollBack:
        out("(rolled back: the readers, libraries, models and digests of the run are gone)")
    return results


def _measure(out, readers, models, library_size, feed_passes, seed):
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core import mail
    from django.utils import timezone
    from rest_framework.test import APIClient

    from recommend import digests, lexical, training
    from recommend.models import Library, LibraryPaper, ReaderModel, ReaderProfile
    from search.models import Paper

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    rng = random.Random(seed)
    ids = list(Paper.objects.values_list("pk", flat=True))
    out(f"corpus: {len(ids)} papers; lexical fit: {'yes' if lexical.current() else 'no'}")
    users = get_user_model().objects.bulk_create([
        get_user_model()(username=f"bench-reader-{i}", email=f"r{i}@bench.invalid") for i in range(readers)])
    ReaderProfile.objects.bulk_create([ReaderProfile(user=u, digest="weekly", digest_size=5) for u in users])
    libraries = Library.objects.bulk_create([Library(owner=u, name="bench") for u in users])
    papers_of = [rng.sample(ids, library_size) for _ in range(models)]
    LibraryPaper.objects.bulk_create([LibraryPaper(library=lib, paper_id=pid)
                                      for i, lib in enumerate(libraries) for pid in papers_of[i % models]])

    train_ms = []
    for lib in libraries[:models]:
        started = time.perf_counter()
        training.train(lib.owner_id, lib)
        train_ms.append((time.perf_counter() - started) * 1000)
    trained = {m.library_id: m for m in ReaderModel.objects.filter(library__in=libraries[:models])}
    copies = []
    for i, lib in enumerate(libraries[models:], start=models):
        source = trained[libraries[i % models].pk]
        copies.append(ReaderModel(user_id=lib.owner_id, library=lib, version=source.version,
                                  kind=source.kind, artifact=source.artifact, positives=source.positives))
    ReaderModel.objects.bulk_create(copies)
    out(f"training: {models} models, {ms_stats(train_ms)} ms")

    feed_ms = []
    client = APIClient()
    for _ in range(feed_passes):
        for lib in libraries[:models]:
            client.force_authenticate(lib.owner)
            started = time.perf_counter()
            response = client.get("/api/v1/feed", {"library": lib.pk, "k": 20, "days": 3650})
            feed_ms.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.content[:300]
    out(f"feed request (in process, k=20): {ms_stats(feed_ms)} ms over {len(feed_ms)} requests")

    now = timezone.now()
    period = digests.period_of("weekly", now)
    per_reader, cpu0, wall0 = [], time.process_time(), time.perf_counter()
    for user in users:
        started = time.perf_counter()
        digests.send(user_id=user.pk, period=period)
        per_reader.append((time.perf_counter() - started) * 1000)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    sent = len(mail.outbox)
    out(f"digest run: {readers} readers in {wall:.1f} s ({cpu:.1f} CPU-s), {sent} mails, "
        f"per reader {ms_stats(per_reader)} ms")
    wall0 = time.perf_counter()
    for user in users:
        digests.send(user_id=user.pk, period=period)
    again = time.perf_counter() - wall0
    out(f"second run: {len(mail.outbox) - sent} more mails in {again:.1f} s (must be 0)")
    return {"readers": readers, "models": models, "library_size": library_size, "corpus": len(ids),
            "train_ms": ms_stats(train_ms), "feed_ms": ms_stats(feed_ms),
            "digest": {"seconds": round(wall, 2), "cpu_seconds": round(cpu, 2), "mails": sent,
                       "per_reader_ms": ms_stats(per_reader)},
            "second_run": {"seconds": round(again, 2), "mails": len(mail.outbox) - sent}}
