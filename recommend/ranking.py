"""The reader model: what ranks a library's (or a user's) feed of new papers.

One copy, used by the product (workers train it, the feed request only scores) and by
`manage.py bench feed`, which chose every constant below on validation readers
(docs/benchmarks.md "Reader feed"). Pure numpy / scipy / scikit-learn: no ORM, no settings.

The model is linear in the stored features of a paper: one coefficient vector per block
(the aspect spaces "generic", "task", "method", "dataset", ... and the tf-idf "words"), so
    score(paper) = sum over blocks b of  features_b(paper) . coef_b  (+ intercept)
and each block's term is its share of the score (`contributions`, the feed's "why").

- "linear": a logistic regression with the positives (library papers, thumbs-up) against the
  thumbs-down and a background sample of the corpus (weak negatives), each block's features
  scaled by its weight before the fit; it can be mixed with the centroid model (both
  standardised on the background): measured, the mix did not help, so DEFAULT has none.
- "centroid": below MIN_POSITIVES, per block the mean of the positives minus a little of the
  thumbs-down (Rocchio), so the coefficients are cosine directions.

Both kinds are stored the same way (coefficients + a JSON header through np.savez, no pickle),
so an artifact is bytes in a database column and loading it runs no code.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

FORMAT = 1  # bumped when the stored layout changes; from_bytes refuses other formats
WORDS = "words"


@dataclass(frozen=True)
class Params:
    """The trainer's constants (the defaults are the ones `bench feed` chose)."""

    # weight of each block's features (aspect name or "words"); a block not named gets 0.
    # Chosen on validation readers (`bench feed --tune`): the words carry most of a reader's
    # topic (3.0: 0 / 0.5 / 1 / 2 / 3 measured, a follow-up past the first grid's edge of 2),
    # the task vector helps at half weight, the dataset vector
    # did not help (0). "method" is the generic vector for the shipped model (no method
    # adapter), so a weight would only double generic's.
    weights: Mapping[str, float] = field(default_factory=lambda: {
        "generic": 1.0, "task": 0.5, WORDS: 3.0})
    C: float = 1.0  # inverse regularisation (0.1 / 1 / 10 measured: 1 best, 10 overfits at k = 30)
    # fewer positives: the centroid model (not searched: the grid stopped before this stage;
    # with one paper the all-block centroid beat the generic one by 1.8x on pwc validation)
    min_positives: int = 2
    # share of the (standardised) centroid in a linear model: 0 / 0.15 / 0.3 measured, 0 best
    centroid_mix: float = 0.0
    # one thumbs-down counts as this many background papers: a reader's explicit "no" is
    # stronger evidence than a random corpus paper (not measured: the readers of the bench
    # have no thumbs-down)
    negative_weight: float = 5.0
    # Rocchio's textbook beta / gamma (0.75 / 0.15): thumbs-down pull the centroid away
    # (not measured, for the same reason)
    rocchio_negative: float = 0.2


DEFAULT = Params()
# corpus papers the trainer wants as background (weak negatives): 2,000 / 8,000 measured on
# validation readers, 8,000 better (most on prolific arXiv authors, where the peer sees every
# paper as a negative)
BACKGROUND_SAMPLE = 8000


@dataclass
class PaperFeatures:
    """The stored features of n papers, rows aligned across blocks."""

    vectors: dict[str, np.ndarray]  # aspect -> float32 (n, d), rows L2-normalised; zero row = no vector
    words: sp.csr_matrix | None = None  # (n, V) tf-idf rows, L2-normalised; None before a lexical fit
    words_version: str | None = None  # the lexical fit the columns belong to

    def __len__(self) -> int:
        for matrix in self.vectors.values():
            return int(matrix.shape[0])
        return 0 if self.words is None else int(self.words.shape[0])

    def take(self, rows) -> PaperFeatures:
        rows = np.asarray(rows, dtype=np.int64)
        return PaperFeatures({a: v[rows] for a, v in self.vectors.items()},
                             None if self.words is None else self.words[rows], self.words_version)


def stack(parts: Sequence[PaperFeatures]) -> PaperFeatures:
    """The rows of several feature sets one after the other (blocks all of them have); empty
    ones are skipped, so an empty thumbs-down set need not carry every block."""
    parts = [p for p in parts if len(p)] or list(parts[:1])
    aspects = set.intersection(*(set(p.vectors) for p in parts)) if parts else set()
    vectors = {a: np.concatenate([p.vectors[a] for p in parts]) for a in sorted(aspects)}
    has_words = bool(parts) and all(p.words is not None for p in parts) and \
        len({p.words_version for p in parts}) == 1
    words = sp.vstack([p.words for p in parts]).tocsr() if has_words else None
    return PaperFeatures(vectors, words, parts[0].words_version if has_words else None)


def _unit(x: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(x))
    return x / norm if norm > 0 else x


def _blocks(features: PaperFeatures) -> dict[str, np.ndarray | sp.csr_matrix]:
    out: dict[str, np.ndarray | sp.csr_matrix] = dict(features.vectors)
    if features.words is not None:
        out[WORDS] = features.words
    return out


class ReaderModel:
    """Per-block coefficients; score = sum of the blocks' dot products + intercept."""

    def __init__(self, kind: str, coef: dict[str, np.ndarray], intercept: float = 0.0,
                 meta: dict | None = None) -> None:
        self.kind = kind
        self.coef = {b: np.asarray(c, dtype=np.float32) for b, c in coef.items()}
        self.intercept = float(intercept)
        self.meta = dict(meta or {})

    @property
    def words_version(self) -> str | None:
        return self.meta.get("words_version")

    def contributions(self, features: PaperFeatures) -> dict[str, np.ndarray]:
        """Per block its term of each paper's score. A block the features lack (a space not
        filled yet, a lexical refit since training) is left out: it would add the same 0 to
        every candidate, so the order of the rest stays right."""
        out = {}
        for block, matrix in _blocks(features).items():
            coef = self.coef.get(block)
            if coef is None or matrix.shape[1] != coef.shape[0]:
                continue
            if block == WORDS and features.words_version != self.words_version:
                continue
            out[block] = np.asarray(matrix @ coef, dtype=np.float32).ravel()
        return out

    def score(self, features: PaperFeatures) -> np.ndarray:
        """(n,) scores, higher = better."""
        total = np.full(len(features), self.intercept, dtype=np.float32)
        for part in self.contributions(features).values():
            total += part
        return total

    def query_vectors(self) -> dict[str, np.ndarray]:
        """Per aspect the unit direction of its coefficients: on unit-length rows the papers
        with the highest cosine to it are the ones that block scores highest, so it is the
        query to gather candidates with from that space's ANN index."""
        return {b: _unit(c) for b, c in self.coef.items() if b != WORDS and np.any(c)}

    def to_bytes(self) -> bytes:
        arrays: dict[str, Any] = {}  # Any: numpy's stub types **kwargs as allow_pickle's bool
        for block, coef in self.coef.items():
            if block == WORDS:  # most of the vocabulary never occurs in the training rows
                nz = np.flatnonzero(coef)
                arrays["words_index"], arrays["words_value"] = nz.astype(np.int32), coef[nz]
            else:
                arrays[f"coef_{block}"] = coef
        header = {"format": FORMAT, "kind": self.kind, "intercept": self.intercept, "meta": self.meta,
                  "words_dim": int(self.coef[WORDS].shape[0]) if WORDS in self.coef else None}
        buffer = io.BytesIO()
        np.savez_compressed(buffer, header=np.array(json.dumps(header)), **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ReaderModel:
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            header = json.loads(str(stored["header"]))
            if header.get("format") != FORMAT:
                raise ValueError(f"reader model format {header.get('format')} is not {FORMAT}")
            coef = {key[5:]: stored[key] for key in stored.files if key.startswith("coef_")}
            if header["words_dim"] is not None:
                words = np.zeros(header["words_dim"], dtype=np.float32)
                words[stored["words_index"]] = stored["words_value"]
                coef[WORDS] = words
        return cls(header["kind"], coef, header["intercept"], header["meta"])


def _used_blocks(params: Params, parts: Sequence[PaperFeatures]) -> list[str]:
    present = set.intersection(*(set(_blocks(p)) for p in parts))
    if WORDS in present and len({p.words_version for p in parts}) != 1:
        present.discard(WORDS)  # rows from two lexical fits: their columns do not line up
    return [b for b in sorted(present) if params.weights.get(b, 0.0) > 0]


def _centroid(blocks: list[str], params: Params, positive: PaperFeatures,
              negative: PaperFeatures) -> dict[str, np.ndarray]:
    pos, neg = _blocks(positive), _blocks(negative)
    coef = {}
    for b in blocks:
        mean = np.asarray(pos[b].mean(axis=0), dtype=np.float64).ravel()
        if len(negative):
            mean = mean - params.rocchio_negative * np.asarray(neg[b].mean(axis=0)).ravel()
        coef[b] = params.weights[b] * _unit(mean)
    return coef


def _fit_logistic(dense: np.ndarray, words: sp.csr_matrix | None, y: np.ndarray, weight: np.ndarray,
                  C: float) -> tuple[np.ndarray, np.ndarray | None, float]:
    """L2-regularised weighted logistic regression (sklearn's objective: 0.5 |w|^2 + C * sum of
    weighted log losses, intercept not penalised), by L-BFGS with the dense aspect block and the
    sparse words kept apart: sklearn would need one sparse matrix holding the dense vectors,
    which made a fit ~10x slower (0.7 s for 2,000 rows)."""
    from scipy.optimize import minimize
    from scipy.special import expit

    n_dense = dense.shape[1]
    n_words = 0 if words is None else words.shape[1]
    sign = 2.0 * y - 1.0

    def loss_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = theta[:-1]
        z = dense @ w[:n_dense] + theta[-1]
        if words is not None:
            z = z + words @ w[n_dense:]
        margin = sign * z
        g = C * weight * -sign * expit(-margin)  # d(loss) / dz per row
        grad = np.empty_like(theta)
        grad[:n_dense] = dense.T @ g
        if words is not None:
            grad[n_dense:-1] = words.T @ g
        grad[:-1] += w
        grad[-1] = g.sum()
        return 0.5 * float(w @ w) + C * float(weight @ np.logaddexp(0.0, -margin)), grad

    theta = minimize(loss_grad, np.zeros(n_dense + n_words + 1), jac=True, method="L-BFGS-B",
                     options={"maxiter": 500, "gtol": 1e-5}).x
    return theta[:n_dense], (theta[n_dense:-1] if words is not None else None), float(theta[-1])


def _linear(blocks: list[str], params: Params, positive: PaperFeatures, negative: PaperFeatures,
            background: PaperFeatures) -> tuple[dict[str, np.ndarray], float]:
    rows = stack([positive, negative, background])
    matrices = _blocks(rows)
    dense_blocks = [b for b in blocks if b != WORDS]
    dense = np.hstack([np.asarray(matrices[b], dtype=np.float64) * params.weights[b] for b in dense_blocks]) \
        if dense_blocks else np.zeros((len(rows), 0))
    words = sp.csr_matrix(matrices[WORDS], dtype=np.float64) * params.weights[WORDS] if WORDS in blocks else None
    n_pos, n_neg = len(positive), len(negative)
    y = np.zeros(len(rows))
    y[:n_pos] = 1.0
    weight = np.ones(len(rows))
    weight[n_pos:n_pos + n_neg] = params.negative_weight
    # balanced: the positives weigh as much as all negatives together, as one positive
    # among thousands would otherwise be a rounding error to the fit
    weight[:n_pos] = weight[n_pos:].sum() / n_pos
    w_dense, w_words, intercept = _fit_logistic(dense, words, y, weight / weight.mean(), params.C)
    coef, start = {}, 0
    for b in dense_blocks:
        width = matrices[b].shape[1]
        # the features were scaled by the weight, so raw features need the product
        coef[b] = w_dense[start:start + width] * params.weights[b]
        start += width
    if w_words is not None:
        coef[WORDS] = w_words * params.weights[WORDS]
    return coef, intercept


def _spread(coef: dict[str, np.ndarray], background: PaperFeatures) -> float:
    scores = ReaderModel("linear", coef, meta={"words_version": background.words_version}).score(background)
    spread = float(np.std(scores)) if len(scores) > 1 else 0.0
    return spread if spread > 1e-9 else 1.0


def train(positive: PaperFeatures, negative: PaperFeatures, background: PaperFeatures,
          params: Params = DEFAULT) -> ReaderModel:
    """A reader's model from their positives (library papers + thumbs-up), thumbs-down (may
    be empty) and a background sample of the corpus (BACKGROUND_SAMPLE papers; the caller
    leaves the positives out of it)."""
    if len(positive) == 0:
        raise ValueError("a reader model needs at least one positive paper")
    parts = [p for p in (positive, negative, background) if len(p)]
    blocks = _used_blocks(params, parts)
    if not blocks:
        raise ValueError("the positives share no feature block with a non-zero weight")
    meta = {"positives": len(positive), "negatives": len(negative), "background": len(background),
            "words_version": positive.words_version if WORDS in blocks else None,
            "params": {"C": params.C, "weights": {b: params.weights[b] for b in blocks},
                       "centroid_mix": params.centroid_mix}}
    centroid = _centroid(blocks, params, positive, negative)
    if len(positive) < params.min_positives or len(background) + len(negative) == 0:
        return ReaderModel("centroid", centroid, 0.0, meta)
    linear, intercept = _linear(blocks, params, positive, negative, background)
    mix = params.centroid_mix
    if mix > 0:
        # both standardised on the background, so the mix is a share of spread, not of raw
        # units (decision values and cosines differ by orders of magnitude)
        s_lin, s_cen = _spread(linear, background), _spread(centroid, background)
        linear = {b: (1 - mix) * linear[b] / s_lin + mix * centroid[b] / s_cen for b in blocks}
        intercept = (1 - mix) * intercept / s_lin
    return ReaderModel("linear", linear, intercept, meta)


def with_params(**changes) -> Params:
    """DEFAULT with some constants changed (the bench's grid)."""
    return replace(DEFAULT, **changes)
