"""Vectors out: encoding papers into their spaces and writing each vector with its halfvec,
bit and ternary copies, every space of a chunk in one statement; queueing that work in
chunks."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from pgvector import Vector

from search import codes
from search.embedders import get_encoder, paper_text
from search.models import EmbeddingSpace, Paper, PaperEmbedding
from search.services.spaces import configured_spaces, space_for_model


def papers_embed(
    *, paper_ids: Iterable[int], space: EmbeddingSpace | None = None,
    spaces: Sequence[EmbeddingSpace] | None = None,
) -> int:
    """Compute and store vectors for the given papers in `space` (or each of `spaces`);
    returns how many vectors were written.

    Idempotent: papers whose stored vector was computed from their current text are skipped,
    deleted papers are ignored. Safe to run twice at once (upsert on the unique key).
    Aspect vectors are derived from the generic ones of the same pass (a matrix product), and
    every space's rows are written in one statement and one transaction: a killed worker
    leaves all of the chunk or none of it.
    """
    targets = list(spaces) if spaces else [space or space_for_model()]
    ids = list(paper_ids)
    current = _current_pairs(targets, ids)
    todo_by_space = {t.pk: {i for i in ids if (t.pk, i) not in current} for t in targets}
    needed = set().union(*todo_by_space.values())
    if not needed:
        return 0
    papers = list(Paper.objects.filter(pk__in=needed).order_by("pk")
                  .values_list("pk", "title", "abstract", "content_hash"))
    if not papers:  # all deleted meanwhile
        return 0
    # read fresh: a long task's space objects may predate the code fit
    thresholds = {pk: None if value is None else np.asarray(value, dtype=np.float32)
                  for pk, value in EmbeddingSpace.objects.filter(pk__in=[t.pk for t in targets])
                  .values_list("pk", "code_thresholds")}
    rows: list[tuple[int, int, str, str, str, str | None]] = []
    for model_name in {t.model_name for t in targets}:
        encoder = get_encoder(model_name)
        group = [t for t in targets if t.model_name == model_name]
        if any(t.aspect == "generic" for t in group):
            generic = encoder.encode([paper_text(t, a) for _, t, a, _ in papers],
                                     batch_size=settings.EMBEDDING_BATCH_SIZE)
        else:  # aspect-only work (a new aspect version): derive from the stored vectors
            generic = _generic_vectors(encoder, papers)
        aspect_spaces = [t for t in group if t.aspect != "generic"]
        per_aspect = {}
        if aspect_spaces:
            from search.aspect_vectors import aspect_vectors

            per_aspect = aspect_vectors(encoder=encoder, papers=[(t, a) for _, t, a, _ in papers],
                                        generic=generic, aspects=[t.aspect for t in aspect_spaces])
        for target in group:
            vectors, evidence = per_aspect.get(target.aspect, (generic, [[] for _ in papers]))
            fitted = thresholds.get(target.pk)
            todo = todo_by_space[target.pk]
            for (pk, _, _, digest), vector, sentences in zip(papers, vectors, evidence, strict=True):
                if pk in todo:
                    # halfvec and bit copies are cast from the float vector by Postgres: one
                    # literal per row to format and parse instead of three
                    rows.append((target.pk, pk, Vector(vector).to_text(), digest,
                                 json.dumps(sentences),
                                 None if fitted is None else codes.bit_literal(vector, fitted)))
    _write_vectors(rows)
    return len(rows)


def _current_pairs(targets: Sequence[EmbeddingSpace], ids: list[int]) -> set[tuple[int, int]]:
    """(space id, paper id) of the vectors already computed from their paper's current text."""
    return set(PaperEmbedding.objects.filter(
        space__in=targets, paper_id__in=ids, content_hash=F("paper__content_hash")
    ).values_list("space_id", "paper_id"))


def _generic_vectors(encoder, papers: list[tuple]) -> np.ndarray:
    """Generic vectors for (pk, title, abstract, hash) rows: the stored current ones where the
    generic space of this model has them (aspect vectors are derived from these), the rest
    encoded now."""
    from search.selectors import stored_vectors

    space = EmbeddingSpace.objects.filter(model_name=encoder.name, model_version=encoder.version,
                                          aspect="generic").first()
    stored = stored_vectors(space, [p[0] for p in papers]) if space else {}
    missing = [p for p in papers if p[0] not in stored]
    if missing:
        fresh = encoder.encode([paper_text(t, a) for _, t, a, _ in missing],
                               batch_size=settings.EMBEDDING_BATCH_SIZE)
        stored.update({p[0]: v for p, v in zip(missing, fresh, strict=True)})
    return np.stack([stored[p[0]] for p in papers]).astype(np.float32)


_WRITE = """
    WITH input AS (
        SELECT i.space_id, i.paper_id, i.v::vector AS v, i.hash, i.evidence::jsonb AS evidence,
               i.code::varbit AS code
        FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[])
             AS i(space_id, paper_id, v, hash, evidence, code)
        -- the paper may have been deleted while we were encoding: write only if it exists
        WHERE EXISTS (SELECT 1 FROM search_paper p WHERE p.id = i.paper_id)
    ), written AS (
        INSERT INTO search_paperembedding
            (paper_id, space_id, embedding, embedding_half, embedding_bit, content_hash,
             evidence, computed_at)
        SELECT paper_id, space_id, v, v::halfvec, binary_quantize(v)::varbit, hash, evidence,
               now()
        FROM input
        ON CONFLICT (space_id, paper_id) DO UPDATE SET
            embedding = EXCLUDED.embedding, embedding_half = EXCLUDED.embedding_half,
            embedding_bit = EXCLUDED.embedding_bit, content_hash = EXCLUDED.content_hash,
            evidence = EXCLUDED.evidence, computed_at = EXCLUDED.computed_at
        RETURNING id, space_id, paper_id
    ), coded AS (
        INSERT INTO search_papercode (embedding_id, space_id, code, categories, published)
        SELECT w.id, w.space_id, i.code, p.categories, p.published
        FROM written w
        JOIN input i ON i.space_id = w.space_id AND i.paper_id = w.paper_id
        JOIN search_paper p ON p.id = w.paper_id
        WHERE i.code IS NOT NULL
        ON CONFLICT (embedding_id) DO UPDATE SET code = EXCLUDED.code,
            categories = EXCLUDED.categories, published = EXCLUDED.published
    )
    -- a vector written without thresholds drops its old code (it would no longer match)
    DELETE FROM search_papercode c USING written w, input i
    WHERE c.embedding_id = w.id AND i.space_id = w.space_id AND i.paper_id = w.paper_id
      AND i.code IS NULL
"""


def _write_vectors(rows: list[tuple[int, int, str, str, str, str | None]]) -> None:
    """Upsert (space, paper, vector, hash, evidence, code) rows: each vector with its halfvec
    and bit copies and its ternary code (or the removal of a code that would no longer match
    it), every space at once, in one statement: one round trip and one commit per chunk
    (executemany per space and table cost a statement per row)."""
    if not rows:
        return
    columns = [list(column) for column in zip(*rows, strict=True)]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_WRITE, columns)


def queue_embedding(*, paper_ids: Sequence[int], spaces: Sequence[EmbeddingSpace] | None = None
                    ) -> int:
    """Queue embedding tasks in chunks: one task per chunk for every space (the aspect vectors
    are matrix products of the generic one, computed in the same pass and written in the
    same statement), then, per chunk, each task named in settings.EMBEDDING_FOLLOW_UP_TASKS
    (a second wave of work on the same papers that needs more than the vectors, sent by name
    with the chunk's paper ids). Returns the number of tasks sent.

    Aspect vectors used to be such a second wave: it read a chunk's papers and their stored
    generic vectors back and wrote three more transactions, for a matrix product
    (docs/benchmarks.md "Embedding pipeline throughput (bench pipeline)")."""
    from celery import current_app

    from search.tasks import embed_papers

    space_ids = [s.pk for s in (spaces or configured_spaces())]
    chunk = settings.EMBEDDING_TASK_CHUNK
    chunks = [list(paper_ids[start:start + chunk]) for start in range(0, len(paper_ids), chunk)]
    sent = 0
    if space_ids:
        for ids in chunks:
            embed_papers.delay(ids, space_ids)
            sent += 1
    for name in settings.EMBEDDING_FOLLOW_UP_TASKS:
        for ids in chunks:
            current_app.send_task(name, args=[ids])
            sent += 1
    return sent
