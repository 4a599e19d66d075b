"""Sentences out: each paper's abstract split into sentences, encoded with the generic space's
encoder, labelled with their rhetorical roles, and written as one compact row together with
the paper's per-facet MUVERA encodings (search.multivector), in one transaction.

A paper's sentences are current when their content hash is the paper's and they were labelled
by the loaded role classifier and encoded into the shipped FDE parameters. A new classifier
or new FDE parameters reuse the stored sentence vectors (no re-encoding); a changed abstract
re-encodes. The writes upsert, so two workers on one chunk just write twice; a worker killed
mid-chunk leaves each paper either old (and stale, so the sweep queues it) or new.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from pgvector import HalfVector

from search.embedders import get_encoder
from search.models import EmbeddingSpace, Paper
from search.multivector import FdeParams, fde_document, fde_params
from search.roles import FACETS, facet_rows, load_role_classifier
from search.sentence_selectors import decode_vectors, facet_index_predicate
from search.sentences import normalize_ws, split_sentences

log = logging.getLogger(__name__)

SENTENCE_QUEUE = "embed"  # the embedding queue: after a chunk's generic and aspect vectors


def sentence_texts(title: str, abstract: str, cap: int | None = None) -> list[str]:
    """The sentences stored for a paper: its abstract's first `cap` sentences (default
    settings.SENTENCES_PER_PAPER; CSAbstruct's longest abstract has 24), or its title alone
    when it has no abstract, so every paper has at least one row to match."""
    cap = int(cap or settings.SENTENCES_PER_PAPER)
    texts = split_sentences(abstract)[:cap]
    if not texts and normalize_ws(title):
        texts = [normalize_ws(title)]
    return texts


def quantize(vectors: np.ndarray) -> tuple[bytes, bytes]:
    """int8 rows scaled by their own max |x| / 127, and those scales as float32."""
    x = np.asarray(vectors, dtype=np.float32)
    if x.size == 0:
        return b"", b""
    scales = np.maximum(np.abs(x).max(axis=1), 1e-12) / 127.0
    q = np.clip(np.rint(x / scales[:, None]), -127, 127).astype(np.int8)
    return q.tobytes(), scales.astype(np.float32).tobytes()


def sentence_space() -> EmbeddingSpace:
    """Where sentences are written: the configured model's generic space."""
    from search.services.spaces import space_for_model

    return space_for_model(aspect="generic")


def papers_embed_sentences(*, paper_ids: Sequence[int], space: EmbeddingSpace | None = None,
                           params: FdeParams | None = None) -> int:
    """Compute and store sentences, roles, sentence vectors and facet FDEs for the papers
    whose stored ones are missing or not current; returns how many papers were written."""
    space = space or sentence_space()
    params = params or fde_params(space.dimension)
    encoder = get_encoder(space.model_name)
    classifier = load_role_classifier(encoder)
    ids = sorted({int(i) for i in paper_ids})
    papers = list(Paper.objects.filter(pk__in=ids).order_by("pk")
                  .values_list("pk", "title", "abstract", "content_hash"))
    stored = _stored(space, [p[0] for p in papers])
    todo, reuse = [], {}
    for pk, title, abstract, digest in papers:
        row = stored.get(pk)
        if row and row["content_hash"] == digest:
            if row["role_version"] == classifier.version and row["fde_version"] == params.version:
                continue  # current
            reuse[pk] = row  # same text: relabel / re-encode the FDE from the stored vectors
        todo.append((pk, title, abstract, digest))
    if not todo:
        return 0
    texts = {pk: (reuse[pk]["texts"] if pk in reuse else sentence_texts(title, abstract))
             for pk, title, abstract, _ in todo}
    fresh = [pk for pk, *_ in todo if pk not in reuse]
    flat = [t for pk in fresh for t in texts[pk]]
    encoded = (encoder.encode(flat, batch_size=settings.EMBEDDING_BATCH_SIZE) if flat
               else np.zeros((0, space.dimension), np.float32))
    vectors: dict[int, np.ndarray] = {}
    start = 0
    for pk in fresh:
        vectors[pk] = encoded[start:start + len(texts[pk])]
        start += len(texts[pk])
    for pk, row in reuse.items():
        vectors[pk] = decode_vectors(row["vectors"], row["scales"], int(space.dimension))
    rows, fde_rows = [], []
    for pk, _, _, digest in todo:
        roles = classifier.classify(texts[pk], vectors[pk])
        raw, scales = quantize(vectors[pk])
        rows.append((pk, space.pk, digest, classifier.version, params.version, texts[pk], roles,
                     raw, scales, pk))
        if len(roles):
            for facet in FACETS:
                fde = fde_document(vectors[pk][facet_rows(roles, facet)[0]], params)
                fde_rows.append((pk, space.pk, facet, params.version,
                                 HalfVector(fde.astype(np.float16)).to_text(), pk))
    ensure_facet_indexes(space, params)
    _write(space.pk, params.version, rows, fde_rows)
    return len(rows)


def _stored(space: EmbeddingSpace, ids: list[int]) -> dict[int, dict]:
    if not ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT paper_id, content_hash, role_version, fde_version, texts, vectors, scales "
            "FROM search_papersentences WHERE space_id = %s AND paper_id = ANY(%s)",
            [space.pk, ids])
        keys = ("content_hash", "role_version", "fde_version", "texts", "vectors", "scales")
        return {int(r[0]): dict(zip(keys, r[1:], strict=True)) for r in cursor.fetchall()}


def _write(space_id: int, version: str, rows: list[tuple], fde_rows: list[tuple]) -> None:
    """The sentence rows and their FDEs in one transaction; FDEs of other parameters (or of a
    paper now without sentences) are dropped with them."""
    with transaction.atomic(), connection.cursor() as cursor:
        # The paper may have been deleted while we were encoding: insert only if it exists.
        cursor.executemany(
            """
            INSERT INTO search_papersentences
                (paper_id, space_id, content_hash, role_version, fde_version, texts, roles,
                 vectors, scales, computed_at)
            SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, now()
            WHERE EXISTS (SELECT 1 FROM search_paper WHERE id = %s)
            ON CONFLICT (space_id, paper_id) DO UPDATE SET
                content_hash = EXCLUDED.content_hash, role_version = EXCLUDED.role_version,
                fde_version = EXCLUDED.fde_version, texts = EXCLUDED.texts,
                roles = EXCLUDED.roles, vectors = EXCLUDED.vectors, scales = EXCLUDED.scales,
                computed_at = EXCLUDED.computed_at
            """, rows)
        cursor.execute(
            "DELETE FROM search_paperfacetvector WHERE space_id = %s AND paper_id = ANY(%s) "
            "AND fde_version <> %s", [space_id, [r[0] for r in rows], version])
        with_fde = {r[0] for r in fde_rows}
        empty = [r[0] for r in rows if r[0] not in with_fde]
        if empty:
            cursor.execute("DELETE FROM search_paperfacetvector WHERE space_id = %s "
                           "AND paper_id = ANY(%s)", [space_id, empty])
        cursor.executemany(
            """
            INSERT INTO search_paperfacetvector (paper_id, space_id, facet, fde_version, fde)
            SELECT %s, %s, %s, %s, %s::halfvec
            WHERE EXISTS (SELECT 1 FROM search_paper WHERE id = %s)
            ON CONFLICT (space_id, facet, paper_id) DO UPDATE SET
                fde_version = EXCLUDED.fde_version, fde = EXCLUDED.fde
            """, fde_rows)


_indexed: set[tuple[int, str]] = set()


def facet_index_statements(space: EmbeddingSpace, params: FdeParams) -> list[str]:
    """One partial HNSW graph per facet on `fde::halfvec(dim)`, inner-product order (the FDE
    inner product approximates Chamfer similarity; its vectors are not unit length)."""
    tag = params.version.replace("-", "_")
    return [
        f"CREATE INDEX IF NOT EXISTS fde_{int(space.pk)}_{facet}_{tag} "
        f"ON search_paperfacetvector USING hnsw ((fde::halfvec({params.dimension})) "
        f"halfvec_ip_ops) WHERE {facet_index_predicate(space.pk, facet, params.version, alias='')}"
        for facet in FACETS]


def ensure_facet_indexes(space: EmbeddingSpace, params: FdeParams) -> None:
    """Create the facet graphs once (per process); a transaction-scoped advisory lock keeps two
    workers from racing on CREATE INDEX."""
    key = (int(space.pk), params.version)
    if key in _indexed:
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('paperscope-fde-index'))")
        for sql in facet_index_statements(space, params):
            cursor.execute(sql)
    _indexed.add(key)


def papers_missing_sentences_ids(*, space: EmbeddingSpace | None = None,
                                 limit: int | None = None) -> list[int]:
    """Papers without current sentences: none stored, older text, another role classifier or
    other FDE parameters."""
    space = space or sentence_space()
    version = load_role_classifier(get_encoder(space.model_name)).version
    params = fde_params(space.dimension)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.id FROM search_paper p LEFT JOIN search_papersentences s "
            "ON s.paper_id = p.id AND s.space_id = %s AND s.content_hash = p.content_hash "
            "AND s.role_version = %s AND s.fde_version = %s "
            "WHERE s.id IS NULL ORDER BY p.id" + (" LIMIT %s" if limit else ""),
            [space.pk, version, params.version, *([limit] if limit else [])])
        return [int(r[0]) for r in cursor.fetchall()]


def queue_sentences(*, paper_ids: Sequence[int]) -> int:
    """Queue sentence tasks in chunks (the second wave, after a chunk's vectors)."""
    from search.sentence_tasks import embed_sentences

    if not settings.SENTENCE_VECTORS:
        return 0

    chunk = settings.EMBEDDING_TASK_CHUNK
    ids = list(paper_ids)
    for start in range(0, len(ids), chunk):
        embed_sentences.delay(ids[start:start + chunk])
    return (len(ids) + chunk - 1) // chunk
