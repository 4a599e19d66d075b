"""Sizes of every table and of each space's vector indexes by graph kind (catalogue reads:
milliseconds whatever the corpus size)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import connection

from search.models import EmbeddingSpace

# emb_s<space>_<kind>...: the names search.planner.indexes gives
_KINDS = (("float_hnsw", "float"), ("half_hnsw", "halfvec"), ("bit_hnsw", "bit"),
          ("code_hnsw", "ternary code"), ("cat_", "category graphs"), ("month_", "month graphs"),
          ("cm_", "category-month graphs"))
_NAME = re.compile(r"^emb_s(\d+)_(.*)$")


def index_kind(name: str) -> tuple[int, str] | None:
    """(space id, graph kind) of a vector index name, or None for another index."""
    match = _NAME.match(name)
    if not match:
        return None
    rest = match.group(2)
    for prefix, kind in _KINDS:
        if rest.startswith(prefix):
            return int(match.group(1)), kind
    return int(match.group(1)), "other"


@dataclass
class IndexGroup:
    space: str
    kind: str
    indexes: int
    bytes: int


@dataclass
class TableSize:
    table: str
    rows: int  # the planner's estimate (reltuples)
    heap: int
    toast: int
    indexes: int
    total: int


def table_sizes() -> list[TableSize]:
    """Every table of the apps, largest first."""
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT c.relname, greatest(c.reltuples, 0)::bigint, pg_relation_size(c.oid),
                   coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0),
                   pg_indexes_size(c.oid), pg_total_relation_size(c.oid)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r' AND n.nspname = current_schema()
              AND (c.relname LIKE 'search\\_%%' OR c.relname LIKE 'recommend\\_%%')
            ORDER BY pg_total_relation_size(c.oid) DESC""")
        return [TableSize(*row) for row in cursor.fetchall()]


def index_groups() -> list[IndexGroup]:
    """Each space's vector indexes, summed per graph kind (a space can have hundreds of
    category and month graphs)."""
    names = dict(EmbeddingSpace.objects.values_list("pk", "name"))
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'i' AND n.nspname = current_schema() AND c.relname LIKE 'emb\\_s%%'""")
        rows = cursor.fetchall()
    groups: dict[tuple[str, str], IndexGroup] = {}
    for name, size in rows:
        parsed = index_kind(name)
        if parsed is None:
            continue
        space_id, kind = parsed
        space = names.get(space_id, f"deleted space {space_id}")
        group = groups.setdefault((space, kind), IndexGroup(space, kind, 0, 0))
        group.indexes += 1
        group.bytes += int(size)
    order = [kind for _, kind in _KINDS]
    return sorted(groups.values(), key=lambda g: (g.space, order.index(g.kind)
                                                  if g.kind in order else 99))
