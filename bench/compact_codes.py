"""Compact codes side by side, exhaustively (no index): which code to rerank from.

    python manage.py bench compact-codes [--queries 300]

On the 74.7k reference vectors (../shared/data/embeddings/), held-out queries ranked against
the rest: for each code, take the top N by the code's distance (Hamming for bit codes, cosine
for PCA-reduced floats), rerank them by the full float vectors, and report recall@10 against
exact float search for N = 2k, 4k, 10k, 20k, 40k (k = 10). This isolates the code's ranking
quality from the HNSW graph; `manage.py bench precision` measures the indexed modes.
"""

from __future__ import annotations

import numpy as np

from bench.common import DATA, require_data

HELP = "compact codes (sign bits, ternary, PCA ...) exhaustively: recall@10 after a float rerank"
EMBEDDINGS = DATA / "embeddings" / "arxiv-minilm-l6-v2.npz"
K = 10


def hamming_top(q_bits: np.ndarray, b_bits: np.ndarray, n: int) -> np.ndarray:
    q, b = q_bits.astype(np.float32), b_bits.astype(np.float32)
    distance = q.sum(1)[:, None] + b.sum(1)[None, :] - 2 * q @ b.T  # popcount(a xor b)
    return np.argpartition(distance, n, axis=1)[:, :n]


def add_arguments(parser):
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)


def run(command, *, queries, seed, **_) -> None:
    require_data(EMBEDDINGS)

    x = np.load(EMBEDDINGS)["vectors"].astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    held = rng.choice(len(x), queries, replace=False)
    mask = np.ones(len(x), bool)
    mask[held] = False
    queries, base = x[held], x[mask]
    scores = queries @ base.T
    truth = np.argsort(-scores, axis=1)[:, :K]

    def recall(candidates: np.ndarray) -> float:
        hits = []
        for i, cand in enumerate(candidates):
            top = cand[np.argsort(-scores[i, cand])[:K]]
            hits.append(len(set(top) & set(truth[i])) / K)
        return float(np.mean(hits))

    mean = base.mean(0)
    codes: dict[str, tuple] = {
        "sign bits (binary), 1 bit/dim": (queries > 0, base > 0),
        "sign of (x - corpus mean), 1 bit/dim": (queries - mean > 0, base - mean > 0),
    }
    for n_thresholds in (2, 3):
        cuts = np.quantile(base, np.linspace(0, 1, n_thresholds + 2)[1:-1], axis=0)

        def encode(m, c=cuts):
            return np.concatenate([m > t for t in c], axis=1)

        label = "ternary (tertiles)" if n_thresholds == 2 else "quaternary (quartiles)"
        codes[f"{label}, {n_thresholds} bits/dim"] = (encode(queries), encode(base))
    _, vecs = np.linalg.eigh(np.cov((base - mean).T))
    for dims in (128, 192):
        proj = vecs[:, ::-1][:, :dims]
        qp, bp = (queries - mean) @ proj, (base - mean) @ proj
        qp /= np.linalg.norm(qp, axis=1, keepdims=True)
        bp /= np.linalg.norm(bp, axis=1, keepdims=True)
        codes[f"PCA to {dims} dims (halfvec: {dims * 2} bytes)"] = ("dense", qp, bp)

    sizes = (2, 4, 10, 20, 40)
    command.stdout.write(f"{len(queries)} held-out queries against {len(base)} vectors; recall@{K} after a "
          "float rerank of the top N by each code")
    command.stdout.write("| code | " + " | ".join(f"N = {s}k" for s in sizes) + " |")
    command.stdout.write("|---|" + "---|" * len(sizes))
    for name, code in codes.items():
        cells = []
        for s in sizes:
            n = s * K
            if isinstance(code[0], str):
                cand = np.argpartition(-(code[1] @ code[2].T), n, axis=1)[:, :n]
            else:
                cand = hamming_top(code[0], code[1], n)
            cells.append(f"{recall(cand):.3f}")
        command.stdout.write(f"| {name} | " + " | ".join(cells) + " |")

