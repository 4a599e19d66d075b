"""Reads: the one search query path shared by the HTML views and the API.

Semantic ranking goes through search.planner (selectivity-aware, never short under filters);
keyword ranking is Postgres full-text search; hybrid fuses both by reciprocal rank fusion.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, F, Q

from search import catalogue, concepts
from search.embedders import get_encoder
from search.models import ASPECTS, ConceptStats, EmbeddingSpace, Job, Paper
from search.newest import built_from_newest
from search.operations import latency
from search.params import SearchFilters, SearchParams
from search.planner import count_matching, filter_sql, vector_ranking

RRF_K = 60


class NotReady(Exception):
    """The data needed for this request is still being computed (e.g. a paper's vector)."""


@dataclass
class ScoredPaper:
    paper: Paper
    score: float
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class SearchResult:
    results: list[ScoredPaper]
    mode: str
    plan: dict[str, Any] = field(default_factory=dict)
    notice: str = ""


# --- spaces and vectors -----------------------------------------------------------------------

def active_space(aspect: str = "generic") -> EmbeddingSpace | None:
    """The aspect's active space (kept per process for a moment: search.catalogue)."""
    return catalogue.active_spaces().get(aspect)


@functools.lru_cache(maxsize=512)
def _encode_query_cached(model_name: str, text: str) -> bytes:
    return get_encoder(model_name).encode([text])[0].astype(np.float32).tobytes()


def encode_query(space: EmbeddingSpace, text: str) -> np.ndarray:
    return np.frombuffer(_encode_query_cached(space.model_name, text), dtype=np.float32)


def stored_vectors(space: EmbeddingSpace, paper_ids: Sequence[int]) -> dict[int, np.ndarray]:
    """The papers' current vectors in `space` (stale or missing ones are left out)."""
    if not paper_ids:
        return {}
    with connection.cursor() as cursor:
        # pgvector's binary form (2-byte dimension, 2 unused bytes, big-endian float32s): 4.5x
        # faster to read than parsing `embedding::text` (2,000 vectors: 90 vs 400 ms)
        cursor.execute(
            "SELECT e.paper_id, vector_send(e.embedding) FROM search_paperembedding e "
            "JOIN search_paper p ON p.id = e.paper_id AND p.content_hash = e.content_hash "
            "WHERE e.space_id = %s AND e.paper_id = ANY(%s)", [space.pk, list(paper_ids)])
        return {int(pid): vector_from_send(raw)
                for pid, raw in cursor.fetchall()}


def vector_from_send(raw: bytes) -> np.ndarray:
    """A vector from pgvector's binary form (`vector_send`: int16 dimension, int16 unused,
    then big-endian float4s): 4.5x faster to read than its text form."""
    return np.frombuffer(bytes(raw), dtype=">f4", offset=4).astype(np.float32)


def vector_from_text(text: str) -> np.ndarray:
    """A vector from its text form ("[0.1,0.2,...]"), as `embedding::text` returns it."""
    return np.asarray(text[1:-1].split(","), dtype=np.float32)


# --- keyword ranking ------------------------------------------------------------------------------

def _keyword_sql(columns: str, where: str) -> str:
    """The keyword ranking (websearch syntax, ts_rank_cd) returning `columns` and the rank."""
    return f"""
        SELECT {columns}, ts_rank_cd(p.search_vector, q, 32) AS rank
        FROM search_paper p, websearch_to_tsquery('english', %s) q
        WHERE p.search_vector @@ q AND {where}
        ORDER BY rank DESC, p.id
        LIMIT %s
    """


def keyword_ranking(*, query: str, k: int, filters: SearchFilters) -> list[tuple[int, float]]:
    """Full-text search (websearch syntax: "phrases", OR, -exclusions) ranked by ts_rank_cd."""
    where, params = filter_sql(filters)
    sql = _keyword_sql("p.id", where)
    with connection.cursor() as cursor:
        cursor.execute(sql, [query, *params, k])
        return [(int(pid), float(rank)) for pid, rank in cursor.fetchall()]


def keyword_results(*, query: str, k: int, filters: SearchFilters,
                    fields: Sequence[str] = ()) -> list[ScoredPaper]:
    """hydrate(keyword_ranking(...), fields) in one statement: the ranking query returns the
    listed fields too (the same WHERE, ORDER BY and LIMIT), a round trip fewer."""
    where, params = filter_sql(filters)
    concrete = _listed_columns(fields or LISTED_FIELDS)
    columns = ", ".join(f"p.{connection.ops.quote_name(str(f.column))}" for f in concrete)
    sql = _keyword_sql(columns, where)
    with connection.cursor() as cursor:
        cursor.execute(sql, [query, *params, k])
        rows = cursor.fetchall()
    names, db = [f.attname for f in concrete], connection.alias
    return [ScoredPaper(Paper.from_db(db, names, row[:-1]), round(float(row[-1]), 6))
            for row in rows]


def newest_ranking(*, k: int, filters: SearchFilters) -> list[tuple[int, float]]:
    """Papers matching the filters, newest first (browsing with an empty query)."""
    where, params = filter_sql(filters)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT p.id, 0.0 FROM search_paper p WHERE {where} "
                       "ORDER BY p.published DESC NULLS LAST, p.id DESC LIMIT %s", [*params, k])
        return [(int(pid), 0.0) for pid, _ in cursor.fetchall()]


def reciprocal_rank_fusion(
    rankings: Sequence[tuple[list[tuple[int, float]], float]], k: int
) -> list[tuple[int, float]]:
    """Fuse ranked lists: score = sum(weight / (RRF_K + rank)), rank starting at 1."""
    scores: dict[int, float] = {}
    for ranking, weight in rankings:
        for rank, (pid, _) in enumerate(ranking, start=1):
            scores[pid] = scores.get(pid, 0.0) + weight / (RRF_K + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:k]


# --- the search entry point -------------------------------------------------------------------------

def paper_search(*, params: SearchParams) -> SearchResult:
    """Semantic, keyword or hybrid search with filters; an empty query browses by date.

    Each search is recorded (mode, plan, latency, short or not) in the operations window
    (search.operations.latency): one pipelined Redis call, never a table write."""
    started = time.perf_counter()
    result = _paper_search(params=params)
    ms = (time.perf_counter() - started) * 1000
    semantic = result.plan.get("semantic") or {}
    plan = semantic.get("plan") or result.plan.get("plan") or result.mode
    latency.record_search(mode=result.mode, plan=str(plan), ms=ms,
                          short=_came_back_short(result, params))
    return result


def _came_back_short(result: SearchResult, params: SearchParams) -> bool:
    """The semantic ranking returned fewer rows than asked for while more papers match (the
    planner promises this never happens). Counted only in that rare case: no extra query on
    the usual path."""
    asked, got = result.plan.get("semantic_asked"), result.plan.get("semantic_got")
    if asked is None or got is None or got >= asked:
        return False
    return count_matching(params.filters, cap=int(asked)) > int(got)


def _paper_search(*, params: SearchParams) -> SearchResult:
    filters, k, mode = params.filters, params.k, params.mode
    if not params.query:
        return SearchResult(hydrate(newest_ranking(k=k, filters=filters), LISTED_FIELDS),
                            "browse", {"plan": "browse"})
    space = active_space()
    notice = ""
    if space is None and mode != "keyword":
        notice = "Semantic search starts once the first embeddings are computed; showing keyword matches."
        mode = "keyword"
    plan: dict[str, Any] = {"mode": mode}
    if mode == "keyword" or space is None:  # no space: mode is "keyword" (above)
        return SearchResult(keyword_results(query=params.query, k=k, filters=filters,
                                            fields=LISTED_FIELDS), mode, plan, notice)
    elif mode == "semantic":
        ranked, plan["semantic"] = vector_ranking(
            space=space, vector=encode_query(space, params.query), k=k, filters=filters,
            precision=params.precision)
        plan["semantic_asked"], plan["semantic_got"] = k, len(ranked)
    else:
        depth = max(k * 3, 50)
        semantic, plan["semantic"] = vector_ranking(
            space=space, vector=encode_query(space, params.query), k=depth, filters=filters,
            precision=params.precision)
        plan["semantic_asked"], plan["semantic_got"] = depth, len(semantic)
        keyword = keyword_ranking(query=params.query, k=depth, filters=filters)
        plan["keyword_hits"] = len(keyword)
        ranked = reciprocal_rank_fusion(
            [(semantic, params.semantic_weight), (keyword, 1.0 - params.semantic_weight)], k)
    return SearchResult(hydrate(ranked, LISTED_FIELDS), mode, plan, notice)


def aspect_names() -> list[str]:
    """The default aspects plus any an operator added as an embedding space."""
    def read() -> list[str]:
        extra = EmbeddingSpace.objects.exclude(aspect__in=ASPECTS).values_list("aspect", flat=True)
        return [*ASPECTS, *sorted(set(extra))]

    return list(catalogue.aspect_names(read))


# The Paper fields a search result shows (the API's result objects, the search page's
# cards, external_url): search loads only these. Half the row is elsewhere (aspect labels,
# hashes, times); a field left out is still read on access, one query per paper.
LISTED_FIELDS = ("id", "arxiv_id", "doi", "source_url", "title", "abstract", "authors",
                 "categories", "concepts", "published")


def hydrate(ranked: list[tuple[int, float]], fields: Sequence[str] | None = None,
            ) -> list[ScoredPaper]:
    """The ranked papers as ScoredPaper, in rank order; `fields`: only those are loaded."""
    if fields:
        papers = _papers_with_fields([pid for pid, _ in ranked], fields)
    else:
        papers = Paper.objects.defer("search_vector").in_bulk([pid for pid, _ in ranked])
    return [ScoredPaper(papers[pid], round(score, 6)) for pid, score in ranked if pid in papers]


def _listed_columns(fields: Sequence[str]) -> list:
    """The Paper fields to read, id included, in the model's order: Model.from_db fills the
    deferred ones in between by position."""
    wanted = {"id", *fields}
    return [f for f in Paper._meta.concrete_fields if f.attname in wanted]


def _papers_with_fields(ids: Sequence[int], fields: Sequence[str]) -> dict[int, Paper]:
    """Paper.objects.only(*fields).in_bulk(ids), without the ORM's query building: half its
    CPU (0.5 vs 1.0 ms for 10 results); the instances are the same (Model.from_db, the other
    fields deferred). The fields are plain columns (no converters: psycopg returns the
    arrays and dates as Python values)."""
    if not ids:
        return {}
    concrete = _listed_columns(fields)
    names = [f.attname for f in concrete]
    columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in concrete)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM search_paper WHERE id = ANY(%s)", [list(ids)])
        rows = cursor.fetchall()
    db = connection.alias
    first = names.index("id")
    return {int(row[first]): Paper.from_db(db, names, row) for row in rows}


# --- facets ------------------------------------------------------------------------------------

FACET_COLUMNS = {"category": "categories", "task": "tasks", "method": "methods",
                 "dataset": "datasets", "concept": "concepts"}
FACET_LIMIT = 12


def facet_counts(filters: SearchFilters) -> dict[str, list[tuple[str, int]]]:
    """How many papers each facet value would match, given the other active filters.

    Each facet is counted without its own filter (so choosing one category still shows the
    others' counts, and they combine as "any of"). Cached briefly: facets over a large corpus
    cost a scan, and they change only when papers are ingested.
    """
    key = "facets:" + hashlib.sha256(repr(filters).encode()).hexdigest()
    cached = cache.get(key)
    if cached is not None:
        return cached
    facets: dict[str, list[tuple[str, int]]] = {}
    with connection.cursor() as cursor:
        for name, column in FACET_COLUMNS.items():
            cleared: dict[str, Any] = {column: ()}
            where, params = filter_sql(replace(filters, **cleared))
            cursor.execute(
                f"SELECT v, count(*) FROM search_paper p, unnest(p.{column}) AS v "
                f"WHERE {where} GROUP BY v ORDER BY count(*) DESC, v LIMIT %s",
                [*params, FACET_LIMIT])
            values = [(str(v), int(n)) for v, n in cursor.fetchall()]
            # A chosen value always stays visible (and checked), even outside the top list.
            shown = {v for v, _ in values}
            for chosen in getattr(filters, column):
                if chosen not in shown:
                    cursor.execute(f"SELECT count(*) FROM search_paper p WHERE {where} "
                                   f"AND p.{column} @> %s::varchar[]", [*params, [chosen]])
                    values.append((chosen, int(cursor.fetchone()[0])))
            facets[name] = values
        where, params = filter_sql(replace(filters, published_after=None, published_before=None))
        cursor.execute(
            f"SELECT extract(year FROM p.published)::int AS y, count(*) FROM search_paper p "
            f"WHERE {where} AND p.published IS NOT NULL GROUP BY y ORDER BY y DESC LIMIT %s",
            [*params, FACET_LIMIT])
        facets["year"] = [(str(y), int(n)) for y, n in cursor.fetchall()]
    cache.set(key, facets, timeout=60)
    return facets


def label_counts(limit: int = 200) -> dict[str, list[tuple[str, int]]]:
    """Every aspect label with its number of papers, most common first."""
    out: dict[str, list[tuple[str, int]]] = {}
    with connection.cursor() as cursor:
        for name in ("task", "method", "dataset"):
            column = FACET_COLUMNS[name]
            cursor.execute(f"SELECT v, count(*) FROM search_paper p, unnest(p.{column}) AS v "
                           "GROUP BY v ORDER BY count(*) DESC, v LIMIT %s", [limit])
            out[name] = [(str(v), int(n)) for v, n in cursor.fetchall()]
    return out


def concept_counts(limit: int = 200) -> dict[str, list[tuple[str, int]]]:
    """The concepts most papers name, per kind, from the last count (no scan per request)."""
    frequencies = concept_weights().frequencies
    return {kind: sorted(((c, n) for c, n in frequencies.items() if concepts.kind_of(c) == kind),
                         key=lambda item: (-item[1], item[0]))[:limit]
            for kind in concepts.KINDS}


class ConceptWeights(NamedTuple):
    frequencies: dict[str, int]  # papers naming each concept
    idf: dict[str, float]


def concept_weights() -> ConceptWeights:
    """The newest count of concepts and their idf (empty before the first count), built once
    per process (search.newest)."""
    return built_from_newest(ConceptStats, lambda stats: ConceptWeights(
        stats.frequencies, {c: concepts.idf(n, stats.papers) for c, n in stats.frequencies.items()},
    )) or ConceptWeights({}, {})


# --- papers, jobs, coverage ---------------------------------------------------------------------

def paper_get(*, pk: int) -> Paper | None:
    return Paper.objects.defer("search_vector").filter(pk=pk).first()


def paper_list(*, arxiv_id: str = "", doi: str = ""):
    qs = Paper.objects.defer("search_vector").order_by("-published", "-id")
    if arxiv_id:
        qs = qs.filter(arxiv_id=arxiv_id)
    if doi:
        qs = qs.filter(doi=doi.lower())
    return qs


def concept_counts_pending() -> bool:
    """The counts that weigh shared task / dataset names are missing or out of date."""
    from search.services.concepts import concept_stats_needed

    return concept_stats_needed()


def job_get(*, pk: int) -> Job | None:
    return Job.objects.filter(pk=pk).first()


@dataclass
class Coverage:
    space: str
    aspect: str
    active: bool
    embedded: int
    total: int
    # an inactive space older than its aspect's active one: left behind by a newer version,
    # never filled again (delete it in the admin); not "in progress"
    superseded: bool = False

    @property
    def percent(self) -> float:
        return round(100.0 * self.embedded / self.total, 1) if self.total else 100.0

    @property
    def complete(self) -> bool:
        return self.embedded >= self.total


def embedding_coverage() -> list[Coverage]:
    """Per space: papers with a vector computed from their current text, out of all papers."""
    total = Paper.objects.count()
    annotated = EmbeddingSpace.objects.annotate(
        current=Count("embeddings", filter=Q(embeddings__content_hash=F("embeddings__paper__content_hash")))
    ).order_by("-is_active", "name")
    spaces = sorted(annotated, key=lambda s: (s.aspect != "generic", not s.is_active, s.aspect))
    active_since = {s.aspect: s.created_at for s in spaces if s.is_active}
    return [Coverage(s.name, s.aspect, s.is_active, s.current, total,
                     superseded=not s.is_active and s.aspect in active_since
                     and s.created_at < active_since[s.aspect])
            for s in spaces]
