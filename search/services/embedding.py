"""Vectors out: encoding papers into their spaces and writing each vector with its halfvec,
bit and ternary copies in one transaction; queueing that work in chunks."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from pgvector import Bit, HalfVector, Vector

from search import codes
from search.embedders import get_encoder, paper_text
from search.models import EmbeddingSpace, Paper, PaperEmbedding
from search.services.codes import space_code_thresholds
from search.services.spaces import configured_spaces, space_for_model


def quantized_copies(vector: np.ndarray) -> tuple[str, str, str]:
    """Full vector, its half-precision copy and its 1-bit-per-dimension sign copy, as the text
    literals of pgvector's types (psycopg needs no adapter registration for these)."""
    return (Vector(vector).to_text(), HalfVector(vector.astype(np.float16)).to_text(),
            Bit(vector > 0).to_text())


def papers_embed(
    *, paper_ids: Iterable[int], space: EmbeddingSpace | None = None,
    spaces: Sequence[EmbeddingSpace] | None = None,
) -> int:
    """Compute and store vectors for the given papers in `space` (or each of `spaces`);
    returns how many vectors were written.

    Idempotent: papers whose stored vector was computed from their current text are skipped,
    deleted papers are ignored. Safe to run twice at once (upsert on the unique key).
    Aspect spaces share one pass over the abstracts' sentences.
    """
    targets = list(spaces) if spaces else [space or space_for_model()]
    ids = list(paper_ids)
    todo_by_space: dict[int, set[int]] = {}
    for target in targets:
        current = set(PaperEmbedding.objects.filter(
            space=target, paper_id__in=ids, content_hash=F("paper__content_hash")
        ).values_list("paper_id", flat=True))
        todo_by_space[target.pk] = {i for i in ids if i not in current}
    needed = set().union(*todo_by_space.values())
    if not needed:
        return 0
    papers = list(Paper.objects.filter(pk__in=needed).order_by("pk")
                  .values_list("pk", "title", "abstract", "content_hash"))
    if not papers:  # all deleted meanwhile
        return 0
    written = 0
    for model_name in {t.model_name for t in targets}:
        encoder = get_encoder(model_name)
        group = [t for t in targets if t.model_name == model_name]
        if any(t.aspect == "generic" for t in group):
            generic = encoder.encode([paper_text(t, a) for _, t, a, _ in papers],
                                     batch_size=settings.EMBEDDING_BATCH_SIZE)
        else:  # aspect-only work (the usual second wave): derive from the stored vectors
            generic = _generic_vectors(encoder, papers)
        aspect_spaces = [t for t in group if t.aspect != "generic"]
        per_aspect = {}
        if aspect_spaces:
            from search.aspect_vectors import aspect_vectors

            per_aspect = aspect_vectors(encoder=encoder, papers=[(t, a) for _, t, a, _ in papers],
                                        generic=generic, aspects=[t.aspect for t in aspect_spaces])
        for target in group:
            vectors, evidence = per_aspect.get(target.aspect, (generic, [[] for _ in papers]))
            thresholds = space_code_thresholds(target)
            rows, code_rows = [], []
            for (pk, _, _, digest), vector, sentences in zip(papers, vectors, evidence, strict=True):
                if pk in todo_by_space[target.pk]:
                    rows.append((pk, target.pk, *quantized_copies(vector), digest,
                                 json.dumps(sentences), pk))
                    code_rows.append((pk, None if thresholds is None
                                      else codes.bit_literal(vector, thresholds)))
            _write_vectors(target.pk, rows, code_rows)
            written += len(rows)
    return written


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


def _write_vectors(space_id: int, rows: list[tuple], code_rows: list[tuple[int, str | None]]
                   ) -> None:
    """Upsert vectors with their half and bit copies, and in the same transaction their
    ternary codes (or drop a code that would no longer match its vector)."""
    if not rows:
        return
    with transaction.atomic(), connection.cursor() as cursor:
        # The paper may have been deleted while we were encoding: insert only if it exists.
        cursor.executemany(
            """
            INSERT INTO search_paperembedding
                (paper_id, space_id, embedding, embedding_half, embedding_bit, content_hash,
                 evidence, computed_at)
            SELECT %s, %s, %s::vector, %s::halfvec, %s::varbit, %s, %s::jsonb, now()
            WHERE EXISTS (SELECT 1 FROM search_paper WHERE id = %s)
            ON CONFLICT (space_id, paper_id) DO UPDATE SET
                embedding = EXCLUDED.embedding, embedding_half = EXCLUDED.embedding_half,
                embedding_bit = EXCLUDED.embedding_bit, content_hash = EXCLUDED.content_hash,
                evidence = EXCLUDED.evidence, computed_at = EXCLUDED.computed_at
            """,
            rows,
        )
        fresh = [(code, space_id, pk) for pk, code in code_rows if code is not None]
        if fresh:
            cursor.executemany(
                "INSERT INTO search_papercode "
                "(embedding_id, space_id, code, categories, published) "
                "SELECT e.id, e.space_id, %s::varbit, p.categories, p.published "
                "FROM search_paperembedding e JOIN search_paper p ON p.id = e.paper_id "
                "WHERE e.space_id = %s AND e.paper_id = %s "
                "ON CONFLICT (embedding_id) DO UPDATE SET code = EXCLUDED.code, "
                "categories = EXCLUDED.categories, published = EXCLUDED.published", fresh)
        orphaned = [(space_id, pk) for pk, code in code_rows if code is None]
        if orphaned:
            cursor.executemany(
                "DELETE FROM search_papercode c USING search_paperembedding e "
                "WHERE c.embedding_id = e.id AND e.space_id = %s AND e.paper_id = %s", orphaned)


def queue_embedding(*, paper_ids: Sequence[int], spaces: Sequence[EmbeddingSpace] | None = None
                    ) -> int:
    """Queue embedding tasks in chunks: generic vectors first, so that semantic search gets
    going early, then all aspect vectors of a chunk in one task (they share the sentence
    encodings). Returns the number of tasks sent."""
    from search.tasks import embed_papers

    spaces = list(spaces or configured_spaces())
    waves = [[s.pk for s in spaces if s.aspect == "generic"],
             [s.pk for s in spaces if s.aspect != "generic"]]
    chunk = settings.EMBEDDING_TASK_CHUNK
    sent = 0
    for space_ids in (w for w in waves if w):
        for start in range(0, len(paper_ids), chunk):
            embed_papers.delay(list(paper_ids[start:start + chunk]), space_ids)
            sent += 1
    return sent
