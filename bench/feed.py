"""The reader feed: simulated readers, peer vs centroid vs Paperscope's reader model.

    python manage.py bench feed            # test readers: the table of docs/benchmarks.md
    python manage.py bench feed --tune     # validation readers: the grid that chose ranking.DEFAULT

Readers (bench.feed_readers): Papers with Code tasks, arXiv authors (arxiv-daily), SPECTER
query papers; a library of k = 1, 3, 10, 30 of a reader's papers, the rest of their papers
among the new ones to be found. Methods (bench.feed_methods): arxiv-sanity-lite's recipe (the
peer), the centroid of the library's generic vectors, Paperscope (recommend.ranking.train with
ranking.DEFAULT) and its ablations: the linear model on the generic vector alone, + the aspect
vectors, + the words (no centroid mix, no fallback: Paperscope itself at k >= 2 while
ranking.DEFAULT mixes nothing, then left out); "centroid, all blocks" is the fallback.
P@10, nDCG@10, MAP@10 per reader, averaged; the ratio to the peer with a paired bootstrap 95%
interval over readers. Readers are split half validation / half test (bench.common, seed 13);
every constant of recommend.ranking was chosen by `--tune` on validation readers of pwc-tasks
and arxiv-daily; this run reports test readers (all 20 SPECTER readers are test readers).
arXiv readers are a seeded sample per size (--readers), as each peer fit reads all 74.7k papers.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from bench.common import OUT, PWC, SPECTER, log, machine, require_data, write_json
from bench.feed_methods import Prepared, centroid_method, evaluate, peer_method, prepare, ranking_method
from bench.feed_readers import READER_SETS
from bench.metrics import bootstrap_mean_ratio, summarize
from recommend import ranking
from recommend.ranking import WORDS, with_params

HELP = "reader feed: simulated readers, arxiv-sanity-lite vs centroid vs recommend.ranking"
METRICS = (("P@10", "p"), ("nDCG@10", "ndcg"), ("MAP@10", "ap"))
TARGET = 1.3


def add_arguments(parser):
    parser.add_argument("--sizes", default="1,3,10,30", help="library sizes")
    parser.add_argument("--sets", default=",".join(READER_SETS), help="reader sets")
    parser.add_argument("--readers", type=int, default=40,
                        help="at most this many readers per set and size (seeded sample)")
    parser.add_argument("--tune", action="store_true", help="the validation grid instead of the test run")
    parser.add_argument("--tune-stages", default="",
                        help='--tune: only these stages from the shipped constants, e.g. "w:words=2,3,4"')
    parser.add_argument("--val-readers", type=int, default=30, help="--tune: readers per set and size")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default var/bench/feed[-tune].json)")


def ablations() -> dict:
    d = ranking.DEFAULT
    aspects = {b: w for b, w in d.weights.items() if b != WORDS}
    bare = {"centroid_mix": 0.0, "min_positives": 1}
    rows = {
        "linear: generic": ranking_method(with_params(weights={"generic": d.weights.get("generic", 1.0)}, **bare)),
        "linear: +aspects": ranking_method(with_params(weights=aspects, **bare)),
        "linear: +aspects +words": ranking_method(with_params(**bare)),
        "centroid, all blocks": ranking_method(with_params(min_positives=10**9)),
        "paperscope": ranking_method(ranking.DEFAULT),
    }
    if d.centroid_mix == 0:
        # then Paperscope *is* that row wherever it is linear (k >= min_positives): one fit less
        del rows["linear: +aspects +words"]
    return rows


def _cells(rs, sizes, split, limit):
    return [(k, rs.eligible(k, split, limit)) for k in sizes if rs.eligible(k, split, limit)]


def run(command, *, sizes, sets, readers, tune, tune_stages, val_readers, out, **_):
    require_data(PWC, SPECTER)
    t0 = time.time()
    sizes = [int(s) for s in sizes.split(",")]
    names = [s for s in sets.split(",") if s]
    if tune:
        from bench.feed_tune import tune as run_tune

        run_tune(command, [n for n in names if n != "specter"], sizes, val_readers, out, tune_stages)
        return
    methods = {"peer": peer_method, "centroid": centroid_method, **ablations()}
    results: dict = {}
    for name in names:
        rs = READER_SETS[name]()
        cells = _cells(rs, sizes, "test", readers)
        prep = prepare(rs, cells)
        log(f"{name}: {len(rs.docs)} papers, pool {len(rs.pool)}, "
            f"readers per size {[(k, len(r)) for k, r in cells]}")
        for size, group in cells:
            per = {m: evaluate(prep, fn, size, group) for m, fn in methods.items()}
            results[f"{name}/{size}"] = per
            log(f"{name} k={size} done ({time.time() - t0:.0f} s)")
    wall = time.time() - t0
    table = _report(command, results, machine(), wall)
    write_json(OUT / "feed.json" if out is None else out,
               {"protocol": __doc__, "params": _params(), "background": ranking.BACKGROUND_SAMPLE,
                "wall_time_s": wall, "cells": table})


def _params() -> dict:
    d = ranking.DEFAULT
    return {"weights": dict(d.weights), "C": d.C, "min_positives": d.min_positives,
            "centroid_mix": d.centroid_mix, "background": ranking.BACKGROUND_SAMPLE}


def _report(command, results: dict, machine_line: str, wall: float) -> dict:
    write = command.stdout.write
    write(f"\n{machine_line}\nbench feed, test readers; wall {wall:.0f} s; x = ratio to the peer "
          f"[paired bootstrap 95%]\n")
    table: dict = {}
    misses = []
    for cell, per in results.items():
        peer = per["peer"]
        write(f"\n{cell} ({len(peer)} readers)\n")
        table[cell] = {}
        for method, rows in per.items():
            line, entry = [f"  {method:<24}"], {"readers": len(rows), **summarize(rows)}
            for label, key in METRICS:
                value = float(np.mean([q[key] for q in rows]))
                base = float(np.mean([q[key] for q in peer]))
                if method == "peer":
                    line.append(f"{label} {value:.3f}{'':>20}")
                    continue
                ratio = value / base if base > 0 else math.inf
                lo, hi = bootstrap_mean_ratio([q[key] for q in rows], [q[key] for q in peer])
                entry[f"{key}_ratio"], entry[f"{key}_ratio_ci"] = ratio, [lo, hi]
                line.append(f"{label} {value:.3f} {ratio:4.2f}x [{lo:.2f}-{hi:.2f}]")
                size = int(cell.split("/")[1])
                if method == "paperscope" and (ratio < 1.0 or (size >= 3 and ratio < TARGET)):
                    misses.append(f"{cell} {label} {ratio:.2f}x")
            table[cell][method] = entry
            write("  ".join(line) + "\n")
    write("\ntarget (>= 1.3x the peer at k >= 3, never below it): "
          + ("met on every cell\n" if not misses else "MISSED at " + "; ".join(misses) + "\n"))
    table["_misses"] = misses
    return table


def evaluate_params(preps: list[tuple[Prepared, list]], params: ranking.Params, background: int) -> dict:
    """{cell: MAP@10} of one configuration on validation readers (the grid's unit of work)."""
    method = ranking_method(params, background)
    return {f"{p.readers.name}/{k}": summarize(evaluate(p, method, k, group))["map_at_10"]
            for p, cells in preps for k, group in cells}
