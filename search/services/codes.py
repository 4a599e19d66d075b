"""The ternary code of a space (search.codes): fitting its thresholds, writing every vector's
code, building its graphs, as a background job with progress."""

from __future__ import annotations

import numpy as np
from django.db import connection, transaction
from pgvector import Bit

from search import codes
from search.models import EmbeddingSpace, Job, PaperCode, PaperEmbedding
from search.services.indexes import (
    IndexProgress,
    space_drop_code_indexes,
    space_ensure_code_index,
    space_ensure_slice_indexes,
)
from search.services.jobs import JobFailed, JobProgress, job_queue, job_run

CODE_FIT_MIN = 1_000  # vectors a space needs before its thresholds are worth fitting
CODE_BATCH = 5_000


def space_code_thresholds(space: EmbeddingSpace) -> np.ndarray | None:
    """The space's current thresholds, read fresh (a long task's space object may predate
    the fit), or None before they are fitted."""
    value = (EmbeddingSpace.objects.filter(pk=space.pk)
             .values_list("code_thresholds", flat=True).first())
    return None if value is None else np.asarray(value, dtype=np.float32)


def space_codes_incomplete(space: EmbeddingSpace) -> bool:
    """Whether some vector of a space with fitted thresholds lacks its code (a write that
    raced the fit, or an interrupted build)."""
    return bool(space.code_version) and PaperEmbedding.objects.filter(
        space=space, code__isnull=True).exists()


def space_build_code(*, space: EmbeddingSpace, refit: bool = False,
                     on_progress: IndexProgress | None = None) -> dict:
    """Fit the space's ternary thresholds (once, or again with `refit`), write the code of
    every vector that lacks it, and build its HNSW index. Idempotent and resumable: a crash
    leaves vectors without a code row, which the next run (or the periodic sweep) fills.

    on_progress(phase, done, total) is called as work advances.
    """
    from search.selectors import vector_from_text

    report = (on_progress or (lambda phase, done, total: None))
    sid = int(space.pk)
    if refit or space.code_thresholds is None:
        report("fit", 0, 1)
        with connection.cursor() as cursor:
            cursor.execute(  # a uniform sample; the float copy, as the writers use
                "SELECT embedding::text FROM search_paperembedding WHERE space_id = %s "
                "ORDER BY random() LIMIT %s", [sid, codes.FIT_SAMPLE])
            sample = [vector_from_text(r[0]) for r in cursor.fetchall()]
        if not sample:
            raise ValueError(f"space {space.name} has no vectors to fit a code on")
        thresholds = codes.fit_thresholds(np.stack(sample))
        with transaction.atomic():
            EmbeddingSpace.objects.filter(pk=sid).update(
                code_thresholds=thresholds.tolist(), code_version=codes.version(thresholds))
            if refit:  # old codes (and all their graphs) are meaningless under new thresholds
                space_drop_code_indexes(space)
                PaperCode.objects.filter(space_id=sid).delete()
        space.refresh_from_db()
        report("fit", 1, 1)
    thresholds = np.asarray(space.code_thresholds, dtype=np.float32)
    total = PaperEmbedding.objects.filter(space_id=sid, code__isnull=True).count()
    done, after = 0, 0
    report("encode", 0, total)
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            # FOR SHARE: a writer replacing one of these vectors waits until our codes are in,
            # then rewrites or deletes the code itself, so no code outlives its vector.
            cursor.execute(
                "SELECT e.id, e.embedding::text FROM search_paperembedding e "
                "WHERE e.space_id = %s AND e.id > %s AND NOT EXISTS "
                "(SELECT 1 FROM search_papercode c WHERE c.embedding_id = e.id) "
                "ORDER BY e.id LIMIT %s FOR SHARE OF e SKIP LOCKED", [sid, after, CODE_BATCH])
            rows = cursor.fetchall()
            if not rows:
                break
            after = rows[-1][0]
            bits = codes.encode(np.stack([vector_from_text(v) for _, v in rows]), thresholds)
            # One statement per batch (a row per statement cost ~1.3 ms a row at 1M).
            cursor.execute(
                "INSERT INTO search_papercode "
                "(embedding_id, space_id, code, categories, published) "
                "SELECT t.id, %s, t.code::varbit, p.categories, p.published "
                "FROM unnest(%s::bigint[], %s::text[]) AS t(id, code) "
                "JOIN search_paperembedding e ON e.id = t.id "
                "JOIN search_paper p ON p.id = e.paper_id "
                "ON CONFLICT (embedding_id) DO NOTHING",
                [sid, [pk for pk, _ in rows], [Bit(b).to_text() for b in bits]])
        done += len(rows)
        report("encode", done, max(total, done))
    space_ensure_code_index(space=space, on_progress=report)
    slices = space_ensure_slice_indexes(space=space, on_progress=report)
    return {"space": space.name, "code_version": space.code_version, "encoded": done,
            "slice_indexes": slices}


def space_code_job_create(*, space: EmbeddingSpace, refit: bool = False, user=None) -> Job:
    """A queued background job building the space's ternary code and index."""
    from search.tasks import build_space_code

    return job_queue(kind=Job.Kind.INDEX, description=f"ternary code + index for {space.name}",
                     params={"space_id": space.pk, "refit": refit}, task=build_space_code,
                     user=user)


def space_code_job_pending(space: EmbeddingSpace) -> bool:
    return Job.objects.filter(kind=Job.Kind.INDEX, params__space_id=space.pk,
                              status__in=(Job.Status.QUEUED, Job.Status.RUNNING)).exists()


def space_code_job_run(*, job: Job) -> Job:
    """Run a code-building job, recording each phase's progress on the job."""

    def build(progress: JobProgress) -> dict:
        space = EmbeddingSpace.objects.filter(pk=job.params["space_id"]).first()
        if space is None:
            raise JobFailed("the embedding space was deleted")

        def save_progress(phase: str, done: int, total: int) -> None:
            progress(processed=done, total=total, message=_CODE_PHASES.get(phase, phase))

        try:
            result = space_build_code(space=space, refit=bool(job.params.get("refit")),
                                      on_progress=save_progress)
        except ValueError as exc:  # nothing to fit on yet
            raise JobFailed(str(exc)) from exc
        return {"stats": result, "processed": result["encoded"], "total": result["encoded"],
                "message": f"{result['encoded']} codes written (thresholds "
                           f"{result['code_version']}), index ready, "
                           f"{len(result['slice_indexes'])} per-category and per-month indexes"}

    return job_run(job=job, work=build)


_CODE_PHASES = {"fit": "fitting thresholds", "encode": "writing codes",
                "index": "building the HNSW index",
                "slices": "building per-category and per-month indexes"}
