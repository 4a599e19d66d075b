"""The peers the scale benchmarks (filtered, precision) run side by side with the planner, on
the same vectors and the same filters:

- pgvector by hand: what a user of pgvector would write. One float HNSW index (pgvector's
  defaults, m=16 / ef_construction=64), hnsw.ef_search and pgvector 0.8's iterative scan set
  once per connection, one statement per query with the filter as a plain WHERE, so that
  Postgres itself chooses between walking the graph and "filter, then sort".
- faiss (a library peer, in-process): IndexHNSWFlat (M=16, efConstruction=64, efSearch=100)
  with the filter as an IDSelectorBatch of the matching papers' positions, and the flat
  storage of the same index searched with that selector (exact over the filter). The filter's
  ids come from Postgres (the metadata lives there), and that query is part of the measured
  time (`ids_ms` reports it apart).
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
from django.db import connection, transaction

from bench.scale_common import rss_kib
from search import planner
from search.params import SearchFilters

BY_HAND_EF_SEARCH = 100  # the planner's own HNSW_EF_SEARCH; pgvector's default is 40
_session_ef: dict[int, int] = {}  # id(psycopg connection) -> the ef_search it was given


def pgvector_by_hand(space, vector: np.ndarray, k: int, filters: SearchFilters,
                     ef_search: int = BY_HAND_EF_SEARCH) -> list[int]:
    """Float HNSW through one SQL statement; session settings sent once per connection."""
    connection.ensure_connection()
    if _session_ef.get(id(connection.connection)) != ef_search:
        with connection.cursor() as cursor:
            cursor.execute(f"SET hnsw.ef_search = {int(ef_search)}; "
                           "SET hnsw.iterative_scan = relaxed_order")
        _session_ef[id(connection.connection)] = ef_search
    dim, sid = int(space.dimension), int(space.pk)
    literal = planner.Vector(vector).to_text()
    if filters.is_empty():
        sql = (f"SELECT e.paper_id FROM search_paperembedding e WHERE e.space_id = {sid} "
               f"ORDER BY e.embedding::vector({dim}) <=> %s::vector({dim}) LIMIT %s")
        params: list[Any] = [literal, k]
    else:
        where, where_params = planner.filter_sql(filters)
        # relaxed_order returns rows slightly out of order: re-sorted, as pgvector's README does
        sql = f"""
            WITH found AS MATERIALIZED (
                SELECT p.id, e.embedding::vector({dim}) <=> %s::vector({dim}) AS distance
                FROM search_paperembedding e JOIN search_paper p ON p.id = e.paper_id
                WHERE e.space_id = {sid} AND {where}
                ORDER BY distance LIMIT %s
            ) SELECT id FROM found ORDER BY distance"""
        params = [literal, *where_params, k]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [int(r[0]) for r in cursor.fetchall()]


class FaissPeer:
    """faiss over the space's float vectors; `search(vector, filters)` -> paper ids."""

    def __init__(self, space, threads: int = 2) -> None:
        import faiss

        self.faiss, self.space = faiss, space
        self.ids, vectors = read_vectors(space)
        self.position = np.full(int(self.ids.max()) + 1, -1, np.int64)
        self.position[self.ids] = np.arange(len(self.ids))
        rss_before = rss_kib(os.getpid())
        faiss.omp_set_num_threads(threads)
        self.index = faiss.IndexHNSWFlat(vectors.shape[1], 16, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = 64
        t0 = time.perf_counter()
        self.index.add(vectors)
        self.build_s = time.perf_counter() - t0
        self.rss_delta_mib = (rss_kib(os.getpid()) - rss_before) / 1024
        self.index.hnsw.efSearch = 100
        self.flat = faiss.downcast_index(self.index.storage)
        faiss.omp_set_num_threads(1)  # one thread per client, as a server would run it
        self.index_bytes = len(faiss.serialize_index(self.index))
        self.ids_ms: list[float] = []

    def search(self, vector: np.ndarray, k: int, filters: SearchFilters | None = None,
               flat: bool = False) -> list[int]:
        query = np.ascontiguousarray(vector[None, :], dtype=np.float32)
        if filters is None or filters.is_empty():
            _, found = (self.flat if flat else self.index).search(query, k)
        else:
            t0 = time.perf_counter()
            selector = self.faiss.IDSelectorBatch(self.filter_positions(filters))
            self.ids_ms.append((time.perf_counter() - t0) * 1000)
            if flat:
                params = self.faiss.SearchParameters(sel=selector)
                _, found = self.flat.search(query, k, params=params)
            else:
                params = self.faiss.SearchParametersHNSW(sel=selector, efSearch=100)
                _, found = self.index.search(query, k, params=params)
        return [int(self.ids[j]) for j in found[0] if j >= 0]

    def filter_positions(self, filters: SearchFilters) -> np.ndarray:
        where, params = planner.filter_sql(filters)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT p.id FROM search_paper p WHERE {where}", params)
            pids = np.fromiter((r[0] for r in cursor.fetchall()), np.int64)
        pids = pids[pids < len(self.position)]
        positions = self.position[pids]
        return np.ascontiguousarray(positions[positions >= 0])


def read_vectors(space) -> tuple[np.ndarray, np.ndarray]:
    """(paper ids, float vectors) of the space, streamed through a server-side cursor (it
    needs a transaction) instead of buffered; the peers of bench filtered and precision."""
    from pgvector.psycopg import register_vector

    connection.ensure_connection()
    raw = connection.connection
    register_vector(raw)
    with raw.cursor() as cur:
        cur.execute("SELECT count(*) FROM search_paperembedding WHERE space_id = %s", [space.pk])
        n = cur.fetchone()[0]
    ids = np.empty(n, np.int64)
    vectors = np.empty((n, int(space.dimension)), np.float32)
    with transaction.atomic(), raw.cursor(name="peer_vectors") as cur:
        cur.itersize = 20_000
        cur.execute("SELECT paper_id, embedding FROM search_paperembedding WHERE space_id = %s",
                    [space.pk])
        for i, (pid, vec) in enumerate(cur):
            ids[i], vectors[i] = pid, vec.to_numpy()
    return ids, vectors
