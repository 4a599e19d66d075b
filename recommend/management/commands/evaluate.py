"""Held-out evaluation of aspect similarity ("similar by task / dataset / method").

    python manage.py evaluate aspects            # ~3.5 min on 2 cores; --quick: ~2.5 min

Runs the canonical benchmark, bench/aspects_concepts.py (splits, baselines and the choice of
weights are documented there and in docs/benchmarks.md, "Named concepts" and "Nearest names"),
in its own process, and prints P@10, MAP@10 and nDCG@10 per evaluated aspect for the generic
embedding, the outside peer (arxiv-sanity-lite's tf-idf + SVM) and what the app serves
(settings.RERANK_WEIGHTS), with the ratio to the stronger baseline and its bootstrap 95%
interval. Needs ../shared/data.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

ROOT = Path(settings.BASE_DIR)
BENCH = ROOT / "bench" / "aspects_concepts.py"
OUT = ROOT / "var" / "bench"  # the bench writes aspects-concepts[-quick].json there
TARGET = 1.3  # the bar: x max(generic, peer) on MAP@10
ROWS = (("generic", "generic embedding"), ("peer", "peer (tf-idf + SVM)"), ("settings", "app"))


class Command(BaseCommand):
    help = "Evaluate aspect similarity on held-out Papers with Code and SciREX splits."

    def add_arguments(self, parser):
        parser.add_argument("what", choices=["aspects"], help="what to evaluate")
        parser.add_argument("--quick", action="store_true",
                            help="skip training the per-fold SciREX adapters (generic base there)")

    def handle(self, *args, quick=False, **options):
        data = ROOT.parent / "shared" / "data"
        if not (data / "pwc-tasks").is_dir() or not (data / "scirex-aspects").is_dir():
            raise CommandError(f"evaluation data not found under {data} (pwc-tasks, scirex-aspects)")
        results = OUT / f"aspects-concepts{'-quick' if quick else ''}.json"
        log = results.with_suffix(".log")
        log.parent.mkdir(parents=True, exist_ok=True)
        self.stderr.write(f"running {BENCH.relative_to(ROOT)} (log: {log.relative_to(ROOT)}) ...")
        with log.open("w") as out:
            done = subprocess.run([sys.executable, str(BENCH), *(["--quick"] if quick else [])],
                                  cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, check=False)
        if done.returncode:
            raise CommandError(f"the benchmark failed (exit {done.returncode}); see {log}")
        self.stdout.write(summary(json.loads(results.read_text())["results"]))


def summary(results: dict) -> str:
    """One markdown table: every evaluated aspect x (generic, peer, app)."""
    lines = ["| set / aspect | queries | ranking | P@10 | MAP@10 | nDCG@10 | x max(generic, peer) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    verdicts = []
    for key, result in results.items():
        test = result["test"]
        if "settings" not in test:
            continue  # no app row: a set the app has no aspect for (pwc area)
        floor = result["max_baseline"]
        for row, label in ROWS:
            m = test[row]
            ratio = ""
            if row == "settings":
                lo, hi = result["ratio_ci95"][row]
                ratio = f"{m['map_at_10'] / floor:.2f} (CI95 {lo:.2f}-{hi:.2f})"
                met = m["map_at_10"] >= TARGET * floor
                verdicts.append(f"- {key}: {'meets' if met else 'does not meet'} the {TARGET}x target"
                                f"{'' if m['n_queries'] >= 30 else ' (too few queries to tell)'}")
            lines.append(f"| {key} | {m['n_queries']} | {label} | {m['p_at_10']:.3f} | "
                         f"{m['map_at_10']:.3f} | {m['ndcg_at_10']:.3f} | {ratio} |")
    return "\n".join(lines + [""] + verdicts) + "\n"
