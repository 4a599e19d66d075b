"""The minimal peer of `bench e2e`: what a user would write by hand instead of Paperscope.

A bare WSGI callable (no Django, no DRF, no cache, no throttle), served by the same gunicorn
command as Paperscope (`gunicorn bench.e2e_peer:application`, same workers and threads):
- the same int8 ONNX query encoder (search.onnx_encoder, loaded once per process);
- pgvector driven by hand with psycopg: one connection per thread, opened once, with
  `hnsw.ef_search` and pgvector 0.8's iterative scan set once on it; one statement per
  semantic or keyword request, the result fields joined in;
- the same keyword SQL as Paperscope (websearch_to_tsquery, ts_rank_cd(..., 32)) and the same
  reciprocal rank fusion for hybrid (k=60, semantic weight 0.3, depth max(3k, 50)).

    GET /search?q=...&mode=semantic|keyword|hybrid&k=10&category=cs.LG

It reads the database in DATABASE_URL and its active generic space. No filters besides
category, no validation beyond the bare minimum: it is the floor, not a product.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from urllib.parse import parse_qs

import numpy as np
import psycopg

EF_SEARCH = int(os.environ.get("PEER_EF_SEARCH", "100"))
RRF_K, SEMANTIC_WEIGHT = 60, 0.3
FIELDS = "p.id, p.arxiv_id, p.title, p.authors, p.categories, p.concepts, p.published"
_local = threading.local()
_encoder_lock = threading.Lock()
_state: dict = {}


def _encoder():
    with _encoder_lock:
        if "encoder" not in _state:
            from search.onnx_encoder import load_or_export

            _state["encoder"] = load_or_export(progress=lambda *_: None)
        return _state["encoder"]


def _conn() -> psycopg.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
        conn.execute(f"SET hnsw.ef_search = {EF_SEARCH}")
        conn.execute("SET hnsw.iterative_scan = relaxed_order")
        if "space" not in _state:
            row = conn.execute("SELECT id, dimension FROM search_embeddingspace "
                               "WHERE aspect = 'generic' AND is_active").fetchone()
            _state["space"] = (int(row[0]), int(row[1]))
        _local.conn = conn
    return conn


def _row(r, score: float) -> dict:
    pid, arxiv_id, title, authors, categories, concepts, published = r
    return {"id": pid, "arxiv_id": arxiv_id, "title": title, "authors": authors,
            "categories": categories, "concepts": concepts,
            "published": published.isoformat() if published else None,
            "url": f"https://arxiv.org/abs/{arxiv_id}" if arxiv_id else "",
            "score": round(score, 6)}


def _semantic(conn, vector: np.ndarray, k: int, categories: list[str], fields: bool):
    sid, dim = _state["space"]
    literal = "[" + ",".join(f"{x:.7g}" for x in vector) + "]"
    where = "AND p.categories && %s::varchar[]" if categories else ""
    select = FIELDS if fields else "p.id"
    # the float HNSW partial index of the space (its expression and predicate repeated)
    sql = (f"SELECT {select}, 1 - (e.embedding::vector({dim}) <=> %s::vector({dim})) "
           f"FROM search_paperembedding e JOIN search_paper p ON p.id = e.paper_id "
           f"WHERE e.space_id = {sid} {where} "
           f"ORDER BY e.embedding::vector({dim}) <=> %s::vector({dim}) LIMIT %s")
    params = [literal, *([categories] if categories else []), literal, k]
    return conn.execute(sql, params).fetchall()


def _keyword(conn, query: str, k: int, categories: list[str], fields: bool):
    where = "AND p.categories && %s::varchar[]" if categories else ""
    select = FIELDS if fields else "p.id"
    sql = (f"SELECT {select}, ts_rank_cd(p.search_vector, q, 32) AS rank "
           f"FROM search_paper p, websearch_to_tsquery('english', %s) q "
           f"WHERE p.search_vector @@ q {where} ORDER BY rank DESC, p.id LIMIT %s")
    return conn.execute(sql, [query, *([categories] if categories else []), k]).fetchall()


def search(query: str, mode: str, k: int, categories: list[str]) -> list[dict]:
    conn = _conn()
    if mode == "keyword":
        return [_row(r[:-1], float(r[-1])) for r in _keyword(conn, query, k, categories, True)]
    vector = _encoder().encode([query])[0]
    if mode == "semantic":
        return [_row(r[:-1], float(r[-1])) for r in _semantic(conn, vector, k, categories, True)]
    depth = max(3 * k, 50)
    scores: dict[int, float] = {}
    for rows, weight in ((_semantic(conn, vector, depth, categories, False), SEMANTIC_WEIGHT),
                         (_keyword(conn, query, depth, categories, False), 1 - SEMANTIC_WEIGHT)):
        for rank, r in enumerate(rows, start=1):
            scores[r[0]] = scores.get(r[0], 0.0) + weight / (RRF_K + rank)
    top = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:k]
    rows = {r[0]: r for r in conn.execute(f"SELECT {FIELDS} FROM search_paper p "
                                          "WHERE p.id = ANY(%s)", [[pid for pid, _ in top]])}
    return [_row(rows[pid], score) for pid, score in top if pid in rows]


def application(environ, start_response):
    params = parse_qs(environ.get("QUERY_STRING", ""))
    query = (params.get("q") or [""])[0].strip()
    mode = (params.get("mode") or ["hybrid"])[0]
    if not query or mode not in ("semantic", "keyword", "hybrid"):
        start_response("400 Bad Request", [("Content-Type", "application/json")])
        return [b'{"detail": "q and mode=semantic|keyword|hybrid are required"}']
    k = min(max(int((params.get("k") or ["10"])[0]), 1), 100)
    results = search(query, mode, k, params.get("category", []))
    body = json.dumps({"mode": mode, "count": len(results), "results": results,
                       "query": query}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


if __name__ == "__main__":  # a quick look: python bench/e2e_peer.py "graph neural networks"
    import sys

    os.environ.setdefault("DATABASE_URL", "postgresql://postgres@127.0.0.1:54329/paperscope")
    print(json.dumps(search(sys.argv[1], "hybrid", 5, []), indent=1)[:2000], Path.cwd())
