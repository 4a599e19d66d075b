"""The vector indexes by name, and the CREATE INDEX statements that make them.

The planner can only use a partial index when its query repeats the index's expression and
predicate exactly, so both come from here: the names the planner looks up, the statements
the services run (search.services.indexes), and which per-category and per-month graphs a
space calls for.
"""

from __future__ import annotations

import hashlib
from datetime import date

from django.conf import settings
from django.db import connection

from search import codes
from search.models import EmbeddingSpace
from search.planner import limits
from search.planner.filters import category_literal
from search.planner.months import month_predicate

# The HNSW graph of each index precision on the vector table, by its name's suffix.
PRECISION_GRAPHS = {"float": "float", "halfvec": "half", "binary": "bit"}


def space_precisions(space: EmbeddingSpace) -> tuple[str, ...]:
    """The index precisions a space gets a graph for. The generic space: all of them (search
    offers every precision mode). An aspect space: settings.ASPECT_INDEX_PRECISIONS (default
    halfvec alone), because "similar", "recommend" and the feed walk it in the default
    precision only; each graph costs every new paper an insert (float 2.0, halfvec 1.5, bit
    1.0 Postgres CPU-ms per row at 4.3k papers, `bench pipeline`, docs/benchmarks.md)."""
    if space.aspect == "generic":
        return tuple(PRECISION_GRAPHS)
    return tuple(p for p in PRECISION_GRAPHS if p in settings.ASPECT_INDEX_PRECISIONS)


def precision_graph_name(space: EmbeddingSpace, precision: str) -> str:
    return f"emb_s{int(space.pk)}_{PRECISION_GRAPHS[precision]}_hnsw"


def vector_index_statements(space: EmbeddingSpace) -> list[str]:
    """Partial HNSW indexes for one space (those of space_precisions): cosine on the float and
    halfvec copies, Hamming on the bit copy. Partial (WHERE space_id = n) with a
    fixed-dimension cast, because the table holds spaces of different dimensions."""
    dim, sid = int(space.dimension), int(space.pk)
    statements = {
        "float": f"CREATE INDEX IF NOT EXISTS emb_s{sid}_float_hnsw ON search_paperembedding "
                 f"USING hnsw ((embedding::vector({dim})) vector_cosine_ops) WHERE space_id = {sid}",
        "halfvec": f"CREATE INDEX IF NOT EXISTS emb_s{sid}_half_hnsw ON search_paperembedding "
                   f"USING hnsw ((embedding_half::halfvec({dim})) halfvec_cosine_ops) "
                   f"WITH (m = {int(settings.HNSW_HALFVEC_M)}) WHERE space_id = {sid}",
        "binary": f"CREATE INDEX IF NOT EXISTS emb_s{sid}_bit_hnsw ON search_paperembedding "
                  f"USING hnsw ((embedding_bit::bit({dim})) bit_hamming_ops) WHERE space_id = {sid}",
    }
    return [statements[p] for p in space_precisions(space)]


def served_precision(space: EmbeddingSpace, precision: str) -> str:
    """`precision`, or the one that serves it when the space has no graph for it (an aspect
    space indexes halfvec alone): halfvec, float, binary, whichever exists first, else exact."""
    present = vector_indexes()
    if precision not in PRECISION_GRAPHS or precision_graph_name(space, precision) in present:
        return precision
    return next((p for p in ("halfvec", "float", "binary")
                 if precision_graph_name(space, p) in present), "exact")


def code_index_name(space: EmbeddingSpace) -> str:
    """The graph on all of a space's ternary codes."""
    return f"emb_s{int(space.pk)}_code_hnsw"


def code_graph_statement(name: str, space: EmbeddingSpace, predicate: str = "") -> str:
    """A partial HNSW index (Hamming) on the space's ternary codes, optionally narrowed by an
    extra predicate on the code rows."""
    dim = codes.code_bits(space.dimension, space.code_thresholds)
    return (f"CREATE INDEX IF NOT EXISTS {name} ON search_papercode USING hnsw "
            f"((code::bit({dim})) bit_hamming_ops) WHERE space_id = {int(space.pk)} {predicate}")


def category_index_name(space: EmbeddingSpace, category: str) -> str:
    return f"emb_s{int(space.pk)}_cat_{hashlib.sha1(category.encode()).hexdigest()[:10]}"


def month_index_name(space: EmbeddingSpace, month: date, category: str | None = None) -> str:
    """A month's graph, or one category's papers of that month (emb_s1_cm_<sha>_202606)."""
    if category is None:
        return f"emb_s{int(space.pk)}_month_{month:%Y%m}"
    return f"{category_index_name(space, category).replace('_cat_', '_cm_')}_{month:%Y%m}"


def space_frequent_slices(space: EmbeddingSpace) -> dict[str, str]:
    """The partial graphs a space's codes call for: {index name: extra index predicate} for
    each category, each calendar month and each category's month holding more papers than
    the planner ranks exactly.
    A filter on one of them then walks a graph of only its papers instead of skipping the
    others (docs/benchmarks.md). Generic space only: aspect spaces serve "similar" queries,
    where filters are rarer, and the graphs cost ~1.6x (categories) + ~1x (months) + ~1.6x
    (categories' months) the code index."""
    if space.aspect != "generic" or not space.code_version:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c, count(*) FROM search_papercode, unnest(categories) AS c "
            "WHERE space_id = %s GROUP BY c HAVING count(*) > %s ORDER BY count(*) DESC",
            [space.pk, limits.EXACT_SCAN_MAX])
        categories = [c for c, _ in cursor.fetchall()]
        cursor.execute(
            "SELECT date_trunc('month', published)::date AS m FROM search_papercode "
            "WHERE space_id = %s AND published IS NOT NULL GROUP BY m HAVING count(*) > %s "
            "ORDER BY m", [space.pk, limits.EXACT_SCAN_MAX])
        months = [m for (m,) in cursor.fetchall()]
        cursor.execute(
            "SELECT c, date_trunc('month', published)::date AS m "
            "FROM search_papercode, unnest(categories) AS c "
            "WHERE space_id = %s AND published IS NOT NULL GROUP BY c, m HAVING count(*) > %s "
            "ORDER BY c, m", [space.pk, limits.EXACT_SCAN_MAX])
        category_months = cursor.fetchall()
    wanted = {category_index_name(space, c): f"AND categories && {category_literal(c)}"
              for c in categories}
    wanted.update({month_index_name(space, m): f"AND {month_predicate(m)}" for m in months})
    wanted.update({month_index_name(space, m, c):
                   f"AND categories && {category_literal(c)} AND {month_predicate(m)}"
                   for c, m in category_months})
    return wanted


def vector_indexes() -> frozenset[str]:
    """Names of the vector indexes that exist: cached for a minute in the shared cache (the
    code build clears it) and for CATALOGUE_TTL seconds in this process on top
    (search.catalogue), so that a filtered search does not pay a Redis round trip for them.
    A graph built meanwhile is used a moment late; one dropped is still asked for a moment
    (a slower plan, the same rows)."""
    from search import catalogue

    return catalogue.remembered(vector_indexes_key(), _vector_indexes_shared)


def _vector_indexes_shared() -> frozenset[str]:
    from django.core.cache import cache

    names = cache.get(vector_indexes_key())
    if names is None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'emb%%'")
            names = frozenset(r[0] for r in cursor.fetchall())
        cache.set(vector_indexes_key(), names, 60)
    return names


def forget_vector_indexes() -> None:
    """Drop this process's copy and the shared one: after building or dropping a graph."""
    from django.core.cache import cache

    from search import catalogue

    catalogue.forget(vector_indexes_key())
    cache.delete(vector_indexes_key())


def space_indexes_like(space: EmbeddingSpace) -> str:
    """A LIKE pattern matching the names of one space's vector indexes and no other's
    ("_" escaped: emb_s1_% would also match emb_s10_...)."""
    return f"emb\\_s{int(space.pk)}\\_%"


def vector_indexes_key() -> str:
    """Per database: two databases sharing a cache (benchmarks, staging beside production)
    have the same space ids, so the same index names for different graphs."""
    return f"paperscope:vector-indexes:{connection.settings_dict['NAME']}"

