"""`bench feed --tune`: how recommend.ranking's constants were chosen, on validation readers.

Coordinate search from a start point, one constant at a time in the order of STAGES, each
stage keeping the value with the best objective: the mean over (reader set, library size)
cells of log MAP@10, so a gain counts as much in a cell where numbers are small as where they
are large. Cells: the validation readers of pwc-tasks and arxiv-daily (SPECTER is test only).
The centroid of the generic vectors is printed beside it for scale; the peer is not run here
(its recipe is fixed, nothing of it is chosen).
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np

from bench.common import OUT, log, write_json
from bench.feed_methods import centroid_method, evaluate, prepare
from bench.feed_readers import READER_SETS
from bench.metrics import summarize
from recommend import ranking
from recommend.ranking import WORDS

START = ranking.Params(weights={"generic": 1.0, "task": 1.0, "dataset": 0.5, WORDS: 1.0}, C=1.0,
                       min_positives=2, centroid_mix=0.3)
START_BACKGROUND = 2000
STAGES: list[tuple[str, list]] = [
    ("C", [0.1, 1.0, 10.0]),
    ("w:" + WORDS, [0.0, 0.5, 1.0, 2.0]),
    ("w:task", [0.0, 0.5, 1.0, 2.0]),
    ("w:dataset", [0.0, 0.5, 1.0]),
    ("centroid_mix", [0.0, 0.15, 0.3, 0.5]),
    ("background", [500, 2000, 5000]),
    ("min_positives", [1, 2, 4]),  # 1: linear at every size; 2: centroid at k = 1; 4: also k = 3
]


def _apply(params: ranking.Params, background: int, key: str, value) -> tuple[ranking.Params, int]:
    if key == "background":
        return params, int(value)
    if key.startswith("w:"):
        return replace(params, weights={**params.weights, key[2:]: float(value)}), background
    return replace(params, **{key: value}), background


def _objective(maps: dict[str, float]) -> float:
    return float(np.mean([math.log(max(v, 1e-4)) for v in maps.values()]))


def parse_stages(text: str) -> list[tuple[str, list]]:
    """"w:words=2,3,4;C=0.3,1" -> [("w:words", [2.0, 3.0, 4.0]), ("C", [0.3, 1.0])]."""
    stages = []
    for part in filter(None, text.split(";")):
        key, values = part.split("=", 1)
        cast = int if key in ("background", "min_positives") else float
        stages.append((key.strip(), [cast(v) for v in values.split(",")]))
    return stages


def tune(command, names: list[str], sizes: list[int], limit: int, out, stages: str = "") -> None:
    """The grid of STAGES from START; with `stages` (a follow-up, e.g. past the edge of a
    grid) only those, from the shipped ranking.DEFAULT and BACKGROUND_SAMPLE."""
    from bench.feed import evaluate_params

    t0 = time.time()
    preps = []
    for name in names:
        rs = READER_SETS[name]()
        cells = [(k, rs.eligible(k, "val", limit)) for k in sizes if rs.eligible(k, "val", limit)]
        preps.append((prepare(rs, cells), cells))
        log(f"{name} (val): readers per size {[(k, len(g)) for k, g in cells]}")
    centroid = {f"{p.readers.name}/{k}": summarize(evaluate(p, centroid_method, k, g))["map_at_10"]
                for p, cells in preps for k, g in cells}
    write = command.stdout.write
    write(f"\nbench feed --tune: validation readers, MAP@10 per cell; objective = mean log MAP@10\n"
          f"centroid (generic): {_fmt(centroid)}  objective {_objective(centroid):.3f}\n")
    params, background, plan = START, START_BACKGROUND, STAGES
    if stages:
        params, background, plan = ranking.DEFAULT, ranking.BACKGROUND_SAMPLE, parse_stages(stages)
    best = evaluate_params(preps, params, background)
    trials = [{"stage": "start", "value": None, "maps": best, "objective": _objective(best)}]
    for key, values in plan:
        scored = []
        for value in values:
            p, b = _apply(params, background, key, value)
            maps = best if (p, b) == (params, background) else evaluate_params(preps, p, b)
            scored.append((_objective(maps), value, p, b, maps))
            trials.append({"stage": key, "value": value, "maps": maps, "objective": _objective(maps)})
            write(f"{key} = {value}: {_fmt(maps)}  objective {_objective(maps):.3f}\n")
            log(f"{key}={value} ({time.time() - t0:.0f} s)")
        # ties go to the earlier (simpler / cheaper) value of the list
        top = max(scored, key=lambda s: (round(s[0], 4), -values.index(s[1])))
        _, value, params, background, best = top
        write(f"  -> {key} = {value}\n")
    chosen = {"weights": dict(params.weights), "C": params.C, "min_positives": params.min_positives,
              "centroid_mix": params.centroid_mix, "background": background}
    write(f"\nchosen: {chosen}\n")
    write_json(out or OUT / ("feed-tune-followup.json" if stages else "feed-tune.json"),
               {"protocol": __doc__, "centroid": centroid, "trials": trials, "chosen": chosen,
                "wall_time_s": time.time() - t0})


def _fmt(maps: dict[str, float]) -> str:
    return " ".join(f"{cell} {v:.3f}" for cell, v in maps.items())
