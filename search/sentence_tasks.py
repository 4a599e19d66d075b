"""Celery tasks of the abstracts' sentences (search.services.sentences): thin, idempotent,
acknowledged late, retried with backoff like search.tasks. Registered from
SearchConfig.ready (Celery's autodiscovery imports only `search.tasks`)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from search.services import sentences
from search.tasks import EMBED_QUEUE, RETRY

log = logging.getLogger(__name__)


@shared_task(**RETRY)
def embed_sentences(paper_ids: list[int]) -> int:
    return sentences.papers_embed_sentences(paper_ids=paper_ids)


@shared_task(acks_late=True, max_retries=0)
def sentences_missing() -> int:
    """Queue papers without current sentences (no row, older text, another role classifier or
    FDE version): the net under a lost message or a killed worker, and how a new classifier
    relabels the corpus. Skips the round while embedding work is still queued (as
    embed_missing does): the sentences of those chunks are on their way behind it."""
    from project.celery import app

    if not settings.SENTENCE_VECTORS:
        return 0
    with app.connection_for_write() as conn:
        pending = conn.default_channel.client.llen(EMBED_QUEUE)
    if pending:
        return 0
    ids = sentences.papers_missing_sentences_ids(limit=50_000)
    if ids:
        log.info("sentences_missing: %d papers lack current sentences", len(ids))
        sentences.queue_sentences(paper_ids=ids)
    return len(ids)


@shared_task(acks_late=True, max_retries=0, soft_time_limit=1800)
def train_roles() -> str:
    """Retrain the sentence-role classifier (manage.py train_roles); the sweep relabels."""
    from search import role_training

    return str(role_training.train()["version"])
