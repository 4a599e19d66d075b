"""Rhetorical roles of abstract sentences: background / objective / method / result / other.

A small CPU classifier over each sentence's embedding (the app's int8 ONNX encoder), its
neighbours' embeddings and its position in the abstract, trained on CSAbstruct by
`manage.py train_roles` (search.role_training) into a versioned numpy artifact
(data/models/sentence-roles.npz: weights, no pickle). A label-transition matrix decodes the
abstract as a sequence (Viterbi): abstracts move background -> objective -> method -> result,
and one sentence's role is much clearer once its neighbours' are known.

When the artifact is missing (or was trained on another encoder) the cue-phrase baseline of
search.sentences labels sentences instead; its version says so, and the stored roles of every
paper are recomputed once a trained artifact appears (the role version is part of what makes a
paper's sentences current).
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from django.conf import settings

ROLE_LABELS = ("background", "objective", "method", "result", "other")
# Facets as the reader thinks of them, and the roles whose sentences state each.
FACETS = {"background": ("background", "objective"), "method": ("method",), "result": ("result",)}


class RoleClassifier(Protocol):
    @property
    def version(self) -> str: ...

    def classify(self, sentences: list[str], vectors: np.ndarray) -> list[str]:
        """One label of ROLE_LABELS per sentence (vectors: one L2-normalised row each)."""
        ...


# --- features (shared by training and inference: one definition, so they cannot drift) --------

POSITION_FEATURES = 5


def position_features(n: int) -> np.ndarray:
    """(n, 5): relative position, first, last, second, log length of the abstract."""
    if n == 0:
        return np.zeros((0, POSITION_FEATURES), dtype=np.float32)
    i = np.arange(n, dtype=np.float32)
    rel = i / max(n - 1, 1)
    return np.stack([rel, (i == 0), (i == n - 1), (i == 1),
                     np.full(n, np.log1p(n) / 3.0)], axis=1).astype(np.float32)


def sentence_features(vectors: np.ndarray, *, context: int = 1) -> np.ndarray:
    """Per sentence: its vector, the previous and next `context` sentences' vectors (zeros past
    the ends), the abstract's mean vector, and the position features."""
    x = np.asarray(vectors, dtype=np.float32)
    n = x.shape[0]
    if n == 0:
        return np.zeros((0, 0), dtype=np.float32)
    d = x.shape[1]
    parts = [x]
    padded = np.concatenate([np.zeros((context, d), np.float32), x,
                             np.zeros((context, d), np.float32)])
    for k in range(1, context + 1):
        parts.append(padded[context - k:context - k + n])  # previous k-th
        parts.append(padded[context + k:context + k + n])  # next k-th
    parts.append(np.repeat(x.mean(axis=0, keepdims=True), n, axis=0))
    parts.append(position_features(n))
    return np.concatenate(parts, axis=1)


def viterbi(log_probs: np.ndarray, log_start: np.ndarray, log_trans: np.ndarray,
            weight: float) -> np.ndarray:
    """Most likely label sequence: per-sentence log-probabilities plus `weight` x the
    transition (and start) log-probabilities."""
    n, k = log_probs.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    score = log_probs[0] + weight * log_start
    back = np.zeros((n, k), dtype=np.int64)
    for t in range(1, n):
        cand = score[:, None] + weight * log_trans  # (from, to)
        back[t] = cand.argmax(axis=0)
        score = cand.max(axis=0) + log_probs[t]
    path = np.zeros(n, dtype=np.int64)
    path[-1] = int(score.argmax())
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def softmax_log(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


@dataclass(frozen=True)
class TrainedRoleClassifier:
    """Multinomial logistic regression over sentence_features, decoded by Viterbi."""

    version: str
    model: str  # the encoder key the weights were trained on (search.embedders.model_key)
    weights: np.ndarray  # (features, labels)
    bias: np.ndarray  # (labels,)
    mean: np.ndarray  # feature standardisation
    scale: np.ndarray
    log_start: np.ndarray
    log_trans: np.ndarray
    transition_weight: float
    context: int

    def log_probs(self, vectors: np.ndarray) -> np.ndarray:
        f = (sentence_features(vectors, context=self.context) - self.mean) / self.scale
        return softmax_log(f @ self.weights + self.bias)

    def classify(self, sentences: list[str], vectors: np.ndarray) -> list[str]:
        if len(sentences) == 0:
            return []
        lp = self.log_probs(vectors)
        if self.transition_weight > 0:
            labels = viterbi(lp, self.log_start, self.log_trans, self.transition_weight)
        else:
            labels = lp.argmax(axis=1)
        return [ROLE_LABELS[int(i)] for i in labels]


class CueRoleClassifier:
    """The rule-based baseline: the cue phrases and position priors of search.sentences
    (task cues -> background, method cues -> method, dataset/result cues -> result)."""

    version = "cues1"
    _ASPECT_OF = {"background": "task", "method": "method", "result": "dataset"}

    def classify(self, sentences: list[str], vectors: np.ndarray | None = None) -> list[str]:
        from search.sentences import cue_score, position_prior

        n = len(sentences)
        out = []
        for i, sentence in enumerate(sentences):
            scores = {role: cue_score(sentence, aspect) + 0.75 * position_prior(i, n, aspect)
                      for role, aspect in self._ASPECT_OF.items()}
            role, best = max(scores.items(), key=lambda kv: kv[1])
            out.append(role if best > 0 else "other")
        return out


def save(path: Path, *, model: str, weights: np.ndarray, bias: np.ndarray, mean: np.ndarray,
         scale: np.ndarray, log_start: np.ndarray, log_trans: np.ndarray,
         transition_weight: float, context: int, info: dict) -> str:
    """Write an artifact (np.savez_compressed, float32 arrays and a JSON header: no pickle).
    Its version hashes the weights, so equal weights = equal version."""
    digest = hashlib.sha256(model.encode())
    given = {"weights": weights, "bias": bias, "mean": mean, "scale": scale,
             "log_start": log_start, "log_trans": log_trans}
    arrays: dict[str, Any] = {k: np.asarray(v, dtype=np.float32) for k, v in given.items()}
    for key in sorted(arrays):
        digest.update(arrays[key].astype(np.float16).tobytes())
    digest.update(f"{transition_weight}:{context}".encode())
    version = "roles-" + digest.hexdigest()[:10]
    meta = {"version": version, "model": model, "labels": list(ROLE_LABELS),
            "transition_weight": transition_weight, "context": context, "info": info}
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays["meta"] = np.asarray(json.dumps(meta))
    np.savez_compressed(path, **arrays)
    return version


@functools.cache
def _load(path: str) -> TrainedRoleClassifier | None:
    file = Path(path)
    if not file.exists():
        return None
    with np.load(file, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        if tuple(meta["labels"]) != ROLE_LABELS:
            return None
        return TrainedRoleClassifier(
            version=meta["version"], model=meta["model"],
            weights=data["weights"], bias=data["bias"], mean=data["mean"], scale=data["scale"],
            log_start=data["log_start"], log_trans=data["log_trans"],
            transition_weight=float(meta["transition_weight"]), context=int(meta["context"]))


def artifact_info(path: Path | None = None) -> dict:
    file = Path(path or settings.SENTENCE_ROLES)
    if not file.exists():
        return {}
    with np.load(file, allow_pickle=False) as data:
        return json.loads(str(data["meta"]))


def load_role_classifier(encoder=None) -> RoleClassifier:
    """The trained classifier (cached per process) if it was trained on this encoder's model
    (default: the configured one); else the cue-phrase baseline."""
    from search.embedders import get_encoder, model_key

    trained = _load(str(settings.SENTENCE_ROLES))
    if trained is None:
        return CueRoleClassifier()
    encoder = encoder or get_encoder()
    return trained if trained.model == model_key(encoder) else CueRoleClassifier()


def facet_rows(roles: list[str], facet: str) -> tuple[np.ndarray, bool]:
    """Row indices of the sentences stating `facet`, and whether that is a fallback: a paper
    with no sentence of the facet answers with all its sentences."""
    if facet not in FACETS:
        raise ValueError(f"unknown facet {facet!r} (one of {', '.join(FACETS)})")
    wanted = FACETS[facet]
    rows = np.array([i for i, r in enumerate(roles) if r in wanted], dtype=np.int64)
    if rows.size:
        return rows, False
    return np.arange(len(roles), dtype=np.int64), True
