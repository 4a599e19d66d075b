"""The planner's thresholds, in one place: several modules read them, and benchmarks and tests
tune them at run time (read them as `limits.NAME` at call time, never import the value)."""

EXACT_SCAN_MAX = 3_000
# ...or, on a big corpus, below this share of it: at 1M papers a 1% filter (10k rows) ranked
# exactly in ~200 ms with recall 1.0, while the iterative scan took ~380 ms (p95) for recall
# 0.78, its graph walk skipping 99% of what it met (docs/benchmarks.md, `bench filtered`).
EXACT_SCAN_FRACTION = 0.02
ESTIMATE_TRUST = 2  # beyond 2x the threshold, the statistics decide alone (no count)

# Candidates per result from each category or month graph (ternary codes) before the float
# rerank: at 1M x10 gave recall@10 0.92; x20 0.94-0.96 on the 50% cs.CV graph, x30 0.96,
# x40 0.978 (p50 10.3 / 11.1 / 12.5 ms; docs/benchmarks.md).
CODE_GRAPH_OVERSAMPLE = 30
# ...and per result beyond the tenth (hybrid asks for 50: 620 candidates, not 1,500; recall@50
# 0.98-0.996 at 74.7k against 0.993-0.999 with 1,500, at 0.64x the time; scans.code_graph_candidates)
CODE_GRAPH_OVERSAMPLE_BEYOND_10 = 8

# A date filter is served by the graphs of the months it spans when that takes at most this
# many graph walks (each ~3 ms at 1M; more are slower than one iterative walk of the whole
# graph, which is good enough for the broad filters that span many months) ...
MONTH_WALKS_MAX = 4
# ...a category + date filter, by that category's month graphs (smaller: at 1M five walks of
# the cs.CL months cost p50 15 / p95 17 ms, against 19 / 29 ms for an iterative walk of the
# cs.CL graph skipping the 70% of it outside the dates).
CATEGORY_MONTH_WALKS_MAX = 6
# ...and the days left over (the part of a month the range cuts, months too small for a
# graph) hold at most this many papers, ranked by their codes exactly from the covering
# (space, date) index (5,600 codes at 1M: 1.5 ms).
MONTH_EXACT_MAX = 10_000

FILTERED_CANDIDATES = 40  # halfvec-ranked rows re-scored in float per query (>= 4 per result)

# Below this many papers the halfvec graph is searched at a narrower ef_search (scans.INDEX_MODES:
# 150 kept recall@10 >= 0.99 at 74.7k, 1M needed 200).
SMALL_CORPUS = 300_000
