"""Reads of the abstracts' sentences (texts, roles, vectors) and facet candidates: the FDE
graph walk of one facet, reranked by exact MaxSim (search.multivector).

Sentences live in the active generic space (the encoder of the generic vectors); only
current rows are read (the paper's content hash and the loaded role classifier's version).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import connection
from pgvector import HalfVector

from search.models import EmbeddingSpace
from search.multivector import fde_params, fde_query, maxsim_many
from search.params import SearchFilters
from search.planner.filters import where_sql
from search.planner.scans import execute_with_settings, hnsw_settings
from search.roles import FACETS, facet_rows


@dataclass
class PaperSentenceSet:
    paper_id: int
    texts: list[str]
    roles: list[str]
    vectors: np.ndarray  # (n, d) float32, rows L2-normalised

    def facet_rows(self, facet: str) -> np.ndarray:
        """Row indices of the facet's sentences (all rows when the paper has none of them)."""
        return facet_rows(self.roles, facet)[0]

    def facet_fallback(self, facet: str) -> bool:
        """Whether facet_rows fell back to all sentences (explanations say so)."""
        return facet_rows(self.roles, facet)[1]

    def facet_vectors(self, facet: str) -> np.ndarray:
        return self.vectors[self.facet_rows(facet)]


def decode_vectors(raw: bytes, scales: bytes, dimension: int) -> np.ndarray:
    """int8 rows times their per-row scale, renormalised (the quantisation's inverse)."""
    q = np.frombuffer(bytes(raw), dtype=np.int8)
    if q.size == 0:
        return np.zeros((0, dimension), dtype=np.float32)
    x = q.reshape(-1, dimension).astype(np.float32) * np.frombuffer(bytes(scales), np.float32)[:, None]
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def sentence_space() -> EmbeddingSpace | None:
    """The space whose encoder embeds sentences: the active generic one (search.catalogue's,
    so a request reading sentences costs no query for it)."""
    from search.selectors import active_space

    return active_space("generic")


def current_role_version() -> str:
    from search.roles import load_role_classifier

    return load_role_classifier().version


def paper_sentences(ids: Sequence[int], space: EmbeddingSpace | None = None
                    ) -> dict[int, PaperSentenceSet]:
    """The papers' current sentence sets; papers without one (not yet computed, stale, or
    deleted) are absent."""
    space = space or sentence_space()
    if space is None or not ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.paper_id, s.texts, s.roles, s.vectors, s.scales "
            "FROM search_papersentences s "
            "JOIN search_paper p ON p.id = s.paper_id AND p.content_hash = s.content_hash "
            "WHERE s.space_id = %s AND s.role_version = %s AND s.paper_id = ANY(%s)",
            [space.pk, current_role_version(), list(ids)])
        rows = cursor.fetchall()
    dim = int(space.dimension)
    return {int(pid): PaperSentenceSet(int(pid), list(texts), list(roles),
                                       decode_vectors(raw, scales, dim))
            for pid, texts, roles, raw, scales in rows}


def facet_index_predicate(space_id: int, facet: str, version: str, alias: str = "f") -> str:
    """The partial FDE index's predicate, written identically in the index and the query."""
    a = f"{alias}." if alias else ""
    return (f"{a}space_id = {int(space_id)} AND {a}facet = '{facet}' "
            f"AND {a}fde_version = '{version}'")


def facet_candidates(facet: str, query: PaperSentenceSet, k: int,
                     filters: SearchFilters | None = None, exclude_ids: Collection[int] = (),
                     *, rerank: int | None = None) -> list[int]:
    """The k papers whose `facet` sentences best match the query's (MaxSim), among those
    passing `filters` and not excluded: the FDE graph's `rerank` nearest (default
    settings.FACET_RERANK_CANDIDATES), reranked by exact MaxSim. Never short: when the walk
    finds fewer than k, the filtered set is ranked exactly."""
    if facet not in FACETS:
        raise ValueError(f"unknown facet {facet!r} (one of {', '.join(FACETS)})")
    space = sentence_space()
    q = query.facet_vectors(facet)
    if space is None or k <= 0 or q.shape[0] == 0:
        return []
    filters = filters or SearchFilters()
    exclude = sorted({int(i) for i in exclude_ids})
    n = max(int(rerank or settings.FACET_RERANK_CANDIDATES), k)
    ids = _fde_walk(space, facet, q, n, filters, exclude)
    ranked = _maxsim_rank(space, facet, q, ids)
    if len(ranked) < k:  # the walk came back short (a narrow filter): rank the filtered set
        ranked = _maxsim_rank(space, facet, q, _filtered_ids(space, filters, exclude))
    return ranked[:k]


def _fde_walk(space: EmbeddingSpace, facet: str, q: np.ndarray, n: int,
              filters: SearchFilters, exclude: list[int]) -> list[int]:
    params = fde_params(space.dimension)
    dim = params.dimension
    where, where_params = where_sql(filters, exclude)
    join = "JOIN search_paper p ON p.id = f.paper_id" if where != "TRUE" else ""
    literal = HalfVector(fde_query(q, params).astype(np.float16)).to_text()
    sql = (f"SELECT f.paper_id FROM search_paperfacetvector f {join} "
           f"WHERE {facet_index_predicate(space.pk, facet, params.version)} AND {where} "
           f"ORDER BY f.fde::halfvec({dim}) <#> %s::halfvec({dim}) LIMIT %s")
    values = hnsw_settings(max(n, int(settings.HNSW_EF_SEARCH)), iterative=where != "TRUE")
    with connection.cursor() as cursor:
        rows = execute_with_settings(cursor, values, sql, [*where_params, literal, n])
    return [int(r[0]) for r in rows]


def _filtered_ids(space: EmbeddingSpace, filters: SearchFilters, exclude: list[int]) -> list[int]:
    where, params = where_sql(filters, exclude)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.paper_id FROM search_papersentences s "
            "JOIN search_paper p ON p.id = s.paper_id AND p.content_hash = s.content_hash "
            f"WHERE s.space_id = %s AND {where}", [space.pk, *params])
        return [int(r[0]) for r in cursor.fetchall()]


def _maxsim_rank(space: EmbeddingSpace, facet: str, q: np.ndarray, ids: list[int]) -> list[int]:
    """ids ordered by MaxSim of the query rows against each paper's facet rows (ties by id)."""
    sets = paper_sentences(ids, space)
    present = sorted(sets)
    if not present:
        return []
    scores = maxsim_many(q, [sets[i].facet_vectors(facet) for i in present])
    order = sorted(range(len(present)), key=lambda j: (-float(scores[j]), present[j]))
    return [present[j] for j in order]
