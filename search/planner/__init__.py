"""Vector retrieval with filters: the selectivity-aware planner and the precision modes.

A filter must never make a query come back short (pgvector applies WHERE after the HNSW scan,
so a rare category can return 2 of 10 results). The planner:
- no filter: an HNSW index scan (ef_search from settings, at least k);
- a filter matching few papers (<= EXACT_SCAN_MAX, or under EXACT_SCAN_FRACTION of a big
  corpus; counted through the B-tree / GIN indexes with a capped count): exact distance
  ranking over just those rows: exact, and cheaper than a graph walk that skips most of what
  it meets;
- one frequent category (+ dates), or a date range over a few busy months: the partial
  graphs of that category or of those months, on the ternary codes (code_graph_scan);
- a broad filter: HNSW with pgvector 0.8's iterative scan, which keeps walking the graph
  until enough rows pass the filter (bounded by hnsw.max_scan_tuples);
- whenever an index scan still returns fewer than k, exact ranking over the filter.
EXACT_SCAN_MAX is set from measurement (docs/benchmarks.md, `manage.py bench filtered`).

Precision modes (issue #4), all returning cosine similarity of the *full* vectors:
- exact:   float scan, no index (the reference);
- float:   HNSW on vector(dim);
- halfvec: HNSW on halfvec(dim), graph degree m=12 searched at ef_search >= 200 (half the
           index memory, float's recall), re-scored with the float vector;
- binary:  HNSW on bit(dim) by Hamming distance for k * oversample candidates, then rerank
           by the float vector (the index is 32x smaller than float's).
- ternary: the same on the 2-bit-per-dimension ternary code (search.codes): a richer code,
           so fewer candidates to rerank; falls back to halfvec until the space's code is
           built (search.services.space_build_code).

Modules: limits (the thresholds), filters (filter SQL and counts), months (calendar months as
SQL), indexes (index names and their CREATE INDEX statements), scans (the executors), decide
(the plan decision). The names below stay importable from search.planner; the thresholds
are read where they live, so a benchmark or a test changes them on `planner.limits`.
"""

from __future__ import annotations

from pgvector import Bit, HalfVector, Vector  # noqa: F401 - re-exported (bench filtered, precision)

from search.params import PRECISIONS, SearchFilters  # noqa: F401 - re-exported
from search.planner import limits  # noqa: F401 - where the thresholds live (planner.limits.X)
from search.planner.decide import (  # noqa: F401 - re-exported
    category_graph,
    corpus_size,
    count_codes,
    exact_scan_threshold,
    month_slices,
    vector_ranking,
)
from search.planner.filters import (  # noqa: F401 - re-exported
    category_literal,
    count_matching,
    dates_only,
    estimate_matching,
    filter_sql,
    name_tokens,
    where_sql,
)
from search.planner.indexes import (  # noqa: F401 - re-exported
    PRECISION_GRAPHS,
    category_index_name,
    code_graph_statement,
    code_index_name,
    forget_vector_indexes,
    month_index_name,
    precision_graph_name,
    served_precision,
    space_frequent_slices,
    space_indexes_like,
    space_precisions,
    vector_index_statements,
    vector_indexes,
    vector_indexes_key,
)
from search.planner.limits import (  # noqa: F401 - re-exported
    CATEGORY_MONTH_WALKS_MAX,
    CODE_GRAPH_OVERSAMPLE,
    ESTIMATE_TRUST,
    EXACT_SCAN_FRACTION,
    EXACT_SCAN_MAX,
    FILTERED_CANDIDATES,
    MONTH_EXACT_MAX,
    MONTH_WALKS_MAX,
)
from search.planner.months import MonthSlices, month_predicate, next_month  # noqa: F401
from search.planner.scans import (  # noqa: F401 - re-exported
    INDEX_MODES,
    IndexMode,
    code_graph_scan,
    exact_scan,
    filtered_scan,
    index_literal,
    index_scan,
)


def forget_planner_memos() -> None:
    """Drop this process's copies of estimates and index names (tests: a new corpus each)."""
    from search import catalogue
    from search.planner.decide import _code_counts
    from search.planner.filters import forget_estimates

    forget_estimates()
    catalogue.forget()
    _code_counts.clear()
