"""The bench app: one entry point, the app's own rerank formula, one split, and the
dependency rule (bench -> apps, never the reverse)."""

import ast
from importlib import import_module
from pathlib import Path

import numpy as np

from bench import aspects
from bench.common import pwc_split
from bench.management.commands.bench import BENCHMARKS, Command
from recommend.rerank import fused_scores, zscore

ROOT = Path(__file__).resolve().parents[2]


def test_bench_help_lists_every_benchmark_with_its_one_line_description():
    text = Command().create_parser("manage.py", "bench").format_help()
    for name, path in BENCHMARKS.items():
        module = import_module(path)
        assert name in text
        assert module.HELP.split()[0] in text
        assert callable(module.run) and callable(module.add_arguments)


def test_no_app_module_imports_bench():
    offenders = []
    for app in ("search", "recommend", "project"):
        for path in (ROOT / app).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] == "bench"]
    assert offenders == []


def test_the_pwc_split_is_a_partition_and_the_same_on_every_call():
    train, val, test = pwc_split(2625)
    assert (len(train), len(val), len(test)) == (1575, 525, 525)
    assert len(set(train) | set(val) | set(test)) == 2625
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), pwc_split(2625), strict=True))


def test_zscore_of_one_shortlist_is_the_plain_formula_and_zero_when_flat():
    values = np.array([0.3, 0.5, 0.1, 0.9])
    assert np.array_equal(zscore(values), (values - values.mean()) / values.std())
    assert np.array_equal(zscore(np.full(5, 0.4)), np.zeros(5))


def old_bench_formula(m, ex, n, w_words, w_concepts, lam):
    """The numpy copy the evaluation used before it called the app's formula: z over each
    query's top-n shortlist by the vector (nan-masked rows), the rest below in vector order."""
    B = m["generic"].copy()
    for i, e in enumerate(ex):
        B[i, list(e)] = -np.inf
    keep = np.zeros(B.shape, bool)
    np.put_along_axis(keep, np.argsort(-B, axis=1, kind="stable")[:, :n], True, axis=1)

    def z(M):
        M = np.where(keep, M, np.nan)
        return np.nan_to_num((M - np.nanmean(M, 1, keepdims=True)) / np.maximum(np.nanstd(M, 1, keepdims=True), 1e-9))

    found, near, _ = m["term"]
    named = found + lam * near
    return np.where(keep, z(m["generic"]) + w_words * z(m["tfidf"]) + w_concepts * named, m["generic"] - 1e3)


def test_the_evaluation_scores_with_the_apps_formula_and_ranks_as_its_old_copy_did():
    rng = np.random.default_rng(3)
    size, n = 60, 20
    m = {"generic": rng.uniform(0, 1, (size, size)), "tfidf": rng.uniform(0, 0.3, (size, size)),
         "term": ((rng.uniform(size=(size, size)) > 0.8) * rng.uniform(size=(size, size)),
                  rng.uniform(0, 1, (size, size)), 0.5)}
    ex = [{i} for i in range(size)]
    weights = (1.0, 4.0)
    scores = aspects.fused(aspects.parts(m, "generic", ex, n), m, "generic", weights)
    # every row's shortlist is scored exactly as recommend.rerank scores one shortlist
    top = aspects.shortlist(m, "generic", ex, n)
    for i in (0, 17, 59):
        cols = top[i]
        expected = fused_scores(m["generic"][i, cols], words=m["tfidf"][i, cols], named=m["term"][0][i, cols],
                                nearest=m["term"][1][i, cols], w_words=1.0, w_concepts=4.0, w_nearest=0.5)
        assert np.array_equal(scores[i, cols], expected)
    old = old_bench_formula(m, ex, n, *weights, 0.5)
    for i in range(size):
        mine, theirs = scores[i].copy(), old[i].copy()
        mine[i] = theirs[i] = -np.inf
        assert list(np.argsort(-mine, kind="stable")[:10]) == list(np.argsort(-theirs, kind="stable")[:10])
