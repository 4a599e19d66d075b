"""Training the sentence-role classifier (search.roles) on CSAbstruct.

CSAbstruct (../shared/data/csabstruct/, Apache-2.0): 2,189 computer-science abstracts, each
sentence labelled background / objective / method / result / other; train / dev / test splits.
Options are chosen on dev only (grid below); the artifact is fitted on train with them; test is
read only by `manage.py bench roles`.

Minutes on a CPU: encoding ~15k sentences with the int8 encoder dominates; each logistic
regression takes seconds. Encodings are cached under var/cache/ by text hash, so a rerun (or
the bench) does not encode again.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings

from search.roles import ROLE_LABELS, TrainedRoleClassifier, save, sentence_features

log = logging.getLogger(__name__)

DEFAULT_DATA = Path(settings.BASE_DIR).parent / "shared" / "data" / "csabstruct"
# The dev grid: context window, inverse regularisation, weight of the transition matrix.
# Narrowed by a first exploration on dev (2026-12-02): with standardised features (context
# 0-1, C 0.1-1, transitions 0-1) dev accuracy stayed at 0.55-0.60; unstandardised, C 1: 0.649
# (context 0) and 0.633 (context 1); a transition weight of 1 never won.
GRID_CONTEXT, GRID_C, GRID_TRANSITIONS = (0, 1), (0.3, 1.0), (0.0, 0.5)


@dataclass
class Abstract:
    sentences: list[str]
    labels: list[int]


def load_split(split: str, data: Path = DEFAULT_DATA) -> list[Abstract]:
    path = Path(data) / f"{split}.jsonl.gz"
    out = []
    with gzip.open(path, "rt") as fh:
        for line in fh:
            row = json.loads(line)
            out.append(Abstract(list(row["sentences"]),
                                [ROLE_LABELS.index(label) for label in row["labels"]]))
    return out


def encode_abstracts(encoder, abstracts: list[Abstract]) -> list[np.ndarray]:
    """Each abstract's sentence vectors, through an on-disk cache keyed by model and text."""
    from search.embedders import model_key

    texts = [s for a in abstracts for s in a.sentences]
    digest = hashlib.sha256(model_key(encoder).encode())
    for t in texts:
        digest.update(t.encode() + b"\0")
    cache = Path(settings.BASE_DIR) / "var" / "cache" / f"role-vectors-{digest.hexdigest()[:16]}.npy"
    if cache.exists():
        flat = np.load(cache, allow_pickle=False)
    else:
        flat = encoder.encode(texts, batch_size=64).astype(np.float32)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, flat, allow_pickle=False)
    out, start = [], 0
    for a in abstracts:
        out.append(flat[start:start + len(a.sentences)])
        start += len(a.sentences)
    return out


def _design(vectors: list[np.ndarray], context: int) -> np.ndarray:
    return np.concatenate([sentence_features(v, context=context) for v in vectors])


def _transitions(abstracts: list[Abstract]) -> tuple[np.ndarray, np.ndarray]:
    """Add-one smoothed log start and transition probabilities of the labels."""
    k = len(ROLE_LABELS)
    start, trans = np.ones(k), np.ones((k, k))
    for a in abstracts:
        start[a.labels[0]] += 1
        for x, y in itertools.pairwise(a.labels):
            trans[x, y] += 1
    return np.log(start / start.sum()), np.log(trans / trans.sum(axis=1, keepdims=True))


def fit(abstracts: list[Abstract], vectors: list[np.ndarray], *, context: int, C: float,
        transition_weight: float, model: str) -> TrainedRoleClassifier:
    from sklearn.linear_model import LogisticRegression

    x = _design(vectors, context)
    y = np.concatenate([a.labels for a in abstracts])
    # Unstandardised: the unit-length embeddings are on one scale already (standardising
    # blew up the low-variance dimensions: dev accuracy 0.56 vs 0.65).
    mean = np.zeros(x.shape[1], np.float32)
    scale = np.ones(x.shape[1], np.float32)
    lr = LogisticRegression(C=C, max_iter=500)
    lr.fit((x - mean) / scale, y)
    # predict_proba's columns follow lr.classes_; every label occurs in CSAbstruct's train
    weights = np.zeros((x.shape[1], len(ROLE_LABELS)), np.float32)
    bias = np.zeros(len(ROLE_LABELS), np.float32)
    for col, cls in enumerate(lr.classes_):
        weights[:, int(cls)] = lr.coef_[col]
        bias[int(cls)] = lr.intercept_[col]
    log_start, log_trans = _transitions(abstracts)
    return TrainedRoleClassifier(
        version="unsaved", model=model, weights=weights, bias=bias,
        mean=mean.astype(np.float32), scale=scale.astype(np.float32),
        log_start=log_start.astype(np.float32), log_trans=log_trans.astype(np.float32),
        transition_weight=transition_weight, context=context)


def predict(classifier, abstracts: list[Abstract], vectors: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([
        [ROLE_LABELS.index(r) for r in classifier.classify(a.sentences, v)]
        for a, v in zip(abstracts, vectors, strict=True)]).astype(np.int64)


def scores(gold: np.ndarray, pred: np.ndarray) -> dict:
    """Accuracy, macro-F1 and per-class F1 (over the five labels)."""
    per_class = {}
    for i, label in enumerate(ROLE_LABELS):
        tp = int(((pred == i) & (gold == i)).sum())
        fp = int(((pred == i) & (gold != i)).sum())
        fn = int(((pred != i) & (gold == i)).sum())
        per_class[label] = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return {"accuracy": float((gold == pred).mean()),
            "macro_f1": float(np.mean(list(per_class.values()))), "per_class_f1": per_class}


def train(*, data: Path = DEFAULT_DATA, out: Path | None = None,
          progress: Callable[[str], None] = log.info) -> dict:
    """Choose options on dev, fit on train, write the artifact; returns what was chosen."""
    from search.embedders import get_encoder, model_key

    started = time.process_time(), time.perf_counter()
    encoder = get_encoder()
    train_set, dev_set = load_split("train", data), load_split("dev", data)
    train_vec, dev_vec = encode_abstracts(encoder, train_set), encode_abstracts(encoder, dev_set)
    encoded = time.perf_counter() - started[1]
    progress(f"encoded {sum(len(a.sentences) for a in train_set + dev_set)} sentences "
             f"in {encoded:.0f} s")
    dev_gold = np.concatenate([a.labels for a in dev_set])
    grid = []
    for context, C in itertools.product(GRID_CONTEXT, GRID_C):
        base = fit(train_set, train_vec, context=context, C=C, transition_weight=0.0,
                   model=model_key(encoder))
        for weight in GRID_TRANSITIONS:
            clf = TrainedRoleClassifier(**{**base.__dict__, "transition_weight": weight})
            s = scores(dev_gold, predict(clf, dev_set, dev_vec))
            grid.append({"context": context, "C": C, "transition_weight": weight,
                         "dev_accuracy": s["accuracy"], "dev_macro_f1": s["macro_f1"]})
            progress(f"context={context} C={C} transitions={weight}: dev acc "
                     f"{s['accuracy']:.3f} macro-F1 {s['macro_f1']:.3f}")
    best = max(grid, key=lambda g: (g["dev_macro_f1"], g["dev_accuracy"]))
    chosen = fit(train_set, train_vec, context=best["context"], C=best["C"],
                 transition_weight=best["transition_weight"], model=model_key(encoder))
    info = {"data": "csabstruct", "train_abstracts": len(train_set), "chosen": best,
            "grid": grid, "cpu_seconds": round(time.process_time() - started[0], 1),
            "wall_seconds": round(time.perf_counter() - started[1], 1)}
    version = save(Path(out or settings.SENTENCE_ROLES), model=chosen.model,
                   weights=chosen.weights, bias=chosen.bias, mean=chosen.mean,
                   scale=chosen.scale, log_start=chosen.log_start, log_trans=chosen.log_trans,
                   transition_weight=chosen.transition_weight, context=chosen.context, info=info)
    progress(f"wrote {out or settings.SENTENCE_ROLES} ({version}): {best}")
    return {"version": version, **info}
