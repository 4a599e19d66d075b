"""Celery tasks: thin wrappers that take primary keys and call services.

Every task is idempotent (services skip what is current), acknowledges late (a killed
worker's message is redelivered), and retries a bounded number of times with backoff.
`embed_missing` runs periodically and re-queues anything that slipped through.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

from search import services
from search.models import EmbeddingSpace, SpaceComparison
from search.operations import audit, pipeline, registry

log = logging.getLogger(__name__)

RETRY = {
    "autoretry_for": (OperationalError, InterfaceError, ConnectionError, TimeoutError),
    "retry_backoff": 5,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 5,
    "acks_late": True,
}
EMBED_QUEUE = "embed"  # settings.CELERY_TASK_ROUTES sends embed_papers there


@shared_task(**RETRY)
def embed_papers(paper_ids: list[int], space_ids: list[int] | None = None) -> int:
    if space_ids is None:
        return services.papers_embed(paper_ids=paper_ids)
    spaces = list(EmbeddingSpace.objects.filter(pk__in=space_ids))
    if not spaces:  # the spaces were deleted meanwhile: nothing to do
        return 0
    return services.papers_embed(paper_ids=paper_ids, spaces=spaces)


@shared_task(**RETRY)
def ingest_job_run(job_id: int) -> None:
    job = services.job_to_run(job_id)
    if job is not None:
        services.ingest_job_run(job=job)


@shared_task(**RETRY)
def build_space_code(job_id: int) -> None:
    job = services.job_to_run(job_id)
    if job is not None:
        services.space_code_job_run(job=job)


@shared_task(acks_late=True, max_retries=0)
def embed_missing() -> int:
    """Queue papers that have no current vector in the configured space.

    Skips the round while embedding tasks are still waiting in the broker queue: those papers
    are already on their way, and queueing them again would only duplicate work (harmless,
    since embedding is idempotent, but wasteful on a big ingest).
    """
    from project.celery import app

    with app.connection_for_write() as conn:
        pending = conn.default_channel.client.llen(EMBED_QUEUE)
    if pending:
        log.info("embed_missing: %d tasks still queued; skipping this round", pending)
        return 0
    spaces = services.configured_spaces()
    configured = {s.pk for s in spaces}
    # the model registry's shadow, previous and active spaces of other models fill too
    spaces += [s for s in registry.spaces_to_fill() if s.pk not in configured]
    missing: set[int] = set()
    for space in spaces:
        ids = services.papers_missing_embedding_ids(space=space, limit=50_000)
        if ids:
            log.info("embed_missing: %d papers lack a vector in %s", len(ids), space.name)
            missing.update(ids)
        elif space.pk in configured:
            services.space_activate_when_complete(aspect=space.aspect)
        _queue_code_build(space)
    if missing:
        # papers_embed skips, per space, whatever is already current
        services.queue_embedding(paper_ids=sorted(missing), spaces=spaces)
    pipeline.sweep_done(queued=len(missing))
    return len(missing)


def _queue_code_build(space: EmbeddingSpace) -> None:
    """Fit a space's ternary code once it has enough vectors; fill codes a write missed."""
    if services.space_code_job_pending(space):
        return
    if space.code_version:
        needed = (services.space_codes_incomplete(space)
                  or not services.space_code_index_exists(space)
                  or _slices_outgrown(space))
    else:
        needed = space.embeddings.count() >= services.CODE_FIT_MIN
    if needed:
        log.info("embed_missing: queueing the ternary code build for %s", space.name)
        services.space_code_job_create(space=space)


def _slices_outgrown(space: EmbeddingSpace) -> bool:
    """A category, a month or a category's month grown past the threshold since the last build
    (the current month always does, sooner or later). Three GROUP BYs over the code table
    (~1-2 s at 1M), so checked every SLICE_CHECK_INTERVAL, not on every sweep."""
    from django.core.cache import cache

    if not cache.add(f"paperscope:slice-check:{space.pk}", True, SLICE_CHECK_INTERVAL):
        return False
    return bool(services.space_slice_indexes_missing(space))


SLICE_CHECK_INTERVAL = 15 * 60  # seconds


@shared_task(max_retries=0)
def fail_stale_jobs() -> int:
    """Resume or end jobs whose worker is gone (services.jobs.recover_stalled_jobs)."""
    return services.recover_stalled_jobs()


@shared_task(max_retries=0)
def refresh_concepts(recount: bool = False) -> int:
    """Concepts for papers stored before the current dictionary, then the counts if due (or
    asked for: the admin action)."""
    updated, stats = services.concepts_refresh(recount=recount)
    if stats is not None:
        log.info("concepts: %d papers refreshed; %s", updated, stats)
    return updated


# --- operations (search.operations): the dashboard's recorders and the model registry ------------

@shared_task(max_retries=0)
def pipeline_snapshot() -> int:
    """Vectors per space, queue depths and live workers, for the dashboard's charts."""
    return pipeline.snapshot_take().pk


@shared_task(max_retries=0, soft_time_limit=300)
def audit_recall() -> int | None:
    """The periodic recall audit; skipped when another run holds the lock."""
    try:
        return audit.recall_audit().pk
    except audit.AuditBusy:
        log.info("audit_recall: another run is in progress; skipped")
        return None


@shared_task(max_retries=0)
def registry_add_space(model_name: str, aspect: str = "generic") -> int | None:
    """Create (or find) the model's space as the registry's shadow and queue its filling."""
    try:
        return registry.registry_add_space(model_name=model_name, aspect=aspect).pk
    except registry.RegistryError as exc:
        log.warning("registry_add_space %s: %s", model_name, exc)
        return None


@shared_task(max_retries=0, soft_time_limit=600)
def registry_compare(comparison_id: int) -> None:
    comparison = SpaceComparison.objects.filter(pk=comparison_id).first()
    if comparison is None or comparison.status != SpaceComparison.Status.QUEUED:
        return
    try:
        registry.registry_compare(comparison=comparison)
    except audit.AuditBusy:
        comparison.status, comparison.message = (SpaceComparison.Status.FAILED,
                                                 "a recall audit was running; compare again")
        comparison.save(update_fields=["status", "message"])


@shared_task(**RETRY)
def registry_delete_space(space_id: int) -> bool:
    try:
        return registry.registry_delete_space(space_id=space_id)
    except registry.RegistryError as exc:
        log.warning("registry_delete_space %s: %s", space_id, exc)
        return False
