"""A corpus large enough for HNSW to be worth auditing: papers of varied categories,
authors and dates, embedded by the deterministic hash embedder (through search.services, the
only writer of vectors)."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from search import services
from search.embedders import content_hash
from search.models import Paper

TOPICS = ("graph neural network transformer attention retrieval contrastive sonar robot grasping "
         "segmentation diffusion language model protein folding reinforcement policy gradient "
         "benchmark dataset privacy federated quantum circuit sparse matrix kernel bayesian "
         "inference causal discovery vision audio speech translation summarisation")
WORDS = TOPICS.split()
CATEGORIES = ("cs.LG", "cs.CL", "cs.CV", "cs.RO", "stat.ML", "q-bio.BM")


def make_papers(n: int, seed: int = 7) -> list[int]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        # a few topic words and many rare ones: high intrinsic dimensionality, where a
        # narrow HNSW walk loses neighbours (what the auditor must notice)
        title = " ".join(rng.choice(WORDS) for _ in range(4)) + f" {i}"
        abstract = " ".join(rng.choice(WORDS) if rng.random() < 0.3 else f"t{rng.randrange(4000)}"
                            for _ in range(60)) + "."
        cats = [rng.choices(CATEGORIES, weights=(40, 25, 15, 10, 6, 4))[0]]
        rows.append(Paper(
            arxiv_id=f"2401.{i:05d}", title=title, abstract=abstract,
            authors=[f"Author{rng.randrange(n // 3)} Surname{i % 7}"], categories=cats,
            published=date(2024, 1, 1) + timedelta(days=rng.randrange(600)),
            first_seen=date(2025, 1, 1) + timedelta(days=i % 30),
            content_hash=content_hash(title, abstract)))
    Paper.objects.bulk_create(rows, batch_size=500)
    return list(Paper.objects.order_by("pk").values_list("pk", flat=True))


@pytest.fixture
def audit_corpus(db):
    """1,500 papers embedded in the generic space."""
    ids = make_papers(1500)
    space = services.space_for_model()
    services.papers_embed(paper_ids=ids, space=space)
    return space


@pytest.fixture
def celery_worker_factory(transactional_db, celery_app_configured):
    """Start a real Celery worker (thread, real Redis broker) for part of a test: the test can
    stop it and see what the operator sees when a worker dies."""
    from contextlib import contextmanager

    from celery.contrib.testing.worker import start_worker
    from django.conf import settings

    app = celery_app_configured

    @contextmanager
    def worker():
        with app.connection_for_write() as conn:
            conn.default_channel.client.delete("celery", *settings.CELERY_TASK_QUEUES)
        with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False,
                          shutdown_timeout=30) as started:
            yield started

    return worker
