"""What every benchmark shares: where the data is, the machine line, percentiles, logging,
and the train / validation / test splits of the labelled corpora.

The splits live here once: the adapter trainer (`manage.py train_aspect_adapters`) and every
evaluation import them, so "the pwc test split was never trained on" holds by construction.
"""

from __future__ import annotations

import gzip
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"  # ../shared/data beside the checkout
PWC = DATA / "pwc-tasks" / "pwc_valid.jsonl.gz"
SCX = DATA / "scirex-aspects" / "scirex_train_aspects.jsonl.gz"
ARXIV_DAILY = DATA / "arxiv-daily"
ARXIV_MINILM = DATA / "embeddings" / "arxiv-minilm-l6-v2.npz"
SPECTER = DATA / "specter-sample"
OUT = ROOT / "var" / "bench"  # results of the runs (git-ignored)
SEED = 13  # the aspect evaluations' seed: every split below is drawn with it


# --- the machine and timing -----------------------------------------------------------------

def machine() -> str:
    """One line: CPU, cores, RAM, Python, Postgres and pgvector (printed by every benchmark)."""
    from django.db import connection

    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('server_version'), "
                       "(SELECT extversion FROM pg_extension WHERE extname = 'vector')")
        pg, vector = cursor.fetchone()
    return (f"{cpu}, {os.cpu_count()} cores{mem}; Python {platform.python_version()}; "
            f"Postgres {pg}, pgvector {vector}")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile by nearest rank (no interpolation: a reported p95 was measured)."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def ms_stats(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(values, 50), 2), "p95_ms": round(percentile(values, 95), 2)}


def log(*parts) -> None:
    """Progress to stderr with a clock, so stdout stays the result."""
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


def write_json(path: Path | None, payload) -> None:
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=1, default=float))


# --- the labelled corpora -------------------------------------------------------------------

def read_jsonl(path: Path) -> list[dict]:
    with gzip.open(path, "rt") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def docs_of(rows: list[dict]) -> list[dict]:
    return [{"title": r["title"], "abstract": r["abstract"]} for r in rows]


def norm_title(title: str) -> str:
    return re.sub(r"[^a-z0-9]", "", title.lower())


def method_base(method: str) -> str:
    """A SciREX method label cut at its first "__" qualifier: BiDAF__ensemble_ -> bidaf."""
    return re.sub(r"_+$", "", method.split("__")[0]).lower()


def require_data(*paths: Path) -> None:
    from django.core.management.base import CommandError

    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise CommandError(f"evaluation data not found: {', '.join(missing)}")


# --- the splits ------------------------------------------------------------------------------

def pwc_split(n: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Papers with Code papers 60/20/20 train / validation / test. The adapters train on the
    first part, pick epoch and mix on the second; the test part is only ever evaluated."""
    perm = np.random.default_rng(seed).permutation(n)
    return perm[: int(0.6 * n)], perm[int(0.6 * n): int(0.8 * n)], perm[int(0.8 * n):]


def pwc_task_split(papers: list[dict], seed: int = SEED) -> dict[str, np.ndarray]:
    """{"train" | "val" | "test": paper indices} by *task* (70/15/15 of the sorted task names):
    the test tasks' papers were never seen by anything trained on the train tasks."""
    tasks = sorted({p["task"] for p in papers})
    perm = np.random.default_rng(seed).permutation(len(tasks))
    c1, c2 = int(0.7 * len(tasks)), int(0.85 * len(tasks))
    which = {tasks[j]: s for s, ix in (("train", perm[:c1]), ("val", perm[c1:c2]), ("test", perm[c2:]))
             for j in ix}
    return {s: np.array([i for i, p in enumerate(papers) if which[p["task"]] == s])
            for s in ("train", "val", "test")}


def scirex_adapter_split(n: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """SciREX papers 80/20 for the shipped dataset adapter: gradients / epoch and mix."""
    perm = np.random.default_rng(seed).permutation(n)
    return perm[: int(0.8 * n)], perm[int(0.8 * n):]


def scirex_folds(n: int, k_folds: int = 5, seed: int = SEED) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """[(train, val, test)] per fold: fold k tests, fold k+1 validates, the rest trains."""
    folds = np.array_split(np.random.default_rng(seed).permutation(n), k_folds)
    out = []
    for k in range(k_folds):
        te, va = folds[k], folds[(k + 1) % k_folds]
        tr = np.concatenate([folds[j] for j in range(k_folds) if j not in (k, (k + 1) % k_folds)])
        out.append((tr, va, te))
    return out


def pwc_transfer_papers(pwc: list[dict], scirex: list[dict], seed: int = SEED) -> list[dict]:
    """The pwc *train* papers whose title is not a SciREX paper's: extra task pairs for the
    SciREX task adapters (never a pwc validation or test paper)."""
    titles = {norm_title(p["title"]) for p in scirex}
    train, _, _ = pwc_split(len(pwc), seed)
    return [pwc[i] for i in train if norm_title(pwc[i]["title"]) not in titles]


def feed_reader_split(names, seed: int = SEED) -> dict[str, str]:
    """{reader name: "val" | "test"}, half each (of the sorted names, seeded): `bench feed`
    chooses recommend.ranking's constants on the "val" readers and reports the "test" ones."""
    ordered = sorted(set(names))
    perm = np.random.default_rng(seed).permutation(len(ordered))
    half = len(ordered) // 2
    return {ordered[j]: "val" if r < half else "test" for r, j in enumerate(perm)}


def facet_query_split(n: int, seed: int = SEED) -> dict[str, np.ndarray]:
    """{"val" | "test": paper indices}, half each (seeded) of the faceted dev set's query
    papers (bench.facet_devset): a paper is a query of one split for every facet, so the
    weights `bench aspects-facets` chooses on "val" never saw a "test" query paper."""
    perm = np.random.default_rng(seed).permutation(n)
    return {"val": np.sort(perm[: n // 2]), "test": np.sort(perm[n // 2:])}
