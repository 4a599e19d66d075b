"""Sentence-role classifier on CSAbstruct's TEST split (docs/benchmarks.md "Sentence roles").

The shipped artifact (settings.SENTENCE_ROLES, options chosen on dev by `manage.py
train_roles`) against the cue-phrase baseline of search.sentences (the rules the aspect
evidence used), on the same test sentences: accuracy, macro-F1, per-class F1. Also the dev grid
the artifact was chosen on, its training time, and how often search.sentences.split_sentences
reproduces CSAbstruct's gold sentence boundaries (the app splits abstracts itself).
With --retrain the classifier is trained again in this run (timed; written to var/bench/).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from django.conf import settings

from bench.common import OUT, machine, write_json
from search import role_training
from search.embedders import get_encoder
from search.roles import ROLE_LABELS, CueRoleClassifier, artifact_info
from search.sentences import split_sentences

HELP = "sentence roles: test accuracy / macro-F1 of the classifier vs the cue-phrase baseline"


def add_arguments(parser):
    parser.add_argument("--data", type=Path, default=role_training.DEFAULT_DATA)
    parser.add_argument("--retrain", action="store_true",
                        help="train again in this run (timed) instead of reading the artifact")
    parser.add_argument("--json", type=Path)


def _line(out, name: str, s: dict) -> None:
    per = "  ".join(f"{label[:4]} {s['per_class_f1'][label]:.3f}" for label in ROLE_LABELS)
    out(f"  {name:<26} acc {s['accuracy']:.3f}  macro-F1 {s['macro_f1']:.3f}   F1: {per}")


def run(command, *, data: Path, retrain: bool, json: Path | None, **_):
    out = command.stdout.write
    out(f"machine: {machine()}")
    path = Path(settings.SENTENCE_ROLES)
    if retrain:
        path = OUT / "sentence-roles-retrained.npz"
        started = time.perf_counter()
        role_training.train(data=data, out=path, progress=lambda m: None)
        out(f"retrained in {time.perf_counter() - started:.0f} s wall -> {path}")
    info = artifact_info(path)
    if not info:
        raise SystemExit(f"no artifact at {path}: run `manage.py train_roles` first")
    from search.roles import _load

    classifier = _load(str(path))
    test = role_training.load_split("test", data)
    encoder = get_encoder()
    vectors = role_training.encode_abstracts(encoder, test)
    gold = np.concatenate([a.labels for a in test])
    n_sent = int(gold.size)
    out(f"\nCSAbstruct test: {len(test)} abstracts, {n_sent} sentences "
        f"(artifact {info['version']}, trained on {info['info']['train_abstracts']} train abstracts)")
    started = time.process_time()
    learned = role_training.scores(gold, role_training.predict(classifier, test, vectors))
    cpu_ms = (time.process_time() - started) * 1000 / n_sent
    cues = CueRoleClassifier()
    baseline = role_training.scores(gold, np.concatenate([
        [ROLE_LABELS.index(r) for r in cues.classify(a.sentences)] for a in test]))
    majority = role_training.scores(gold, np.full_like(gold, int(np.bincount(gold).argmax())))
    _line(out, "classifier (shipped)", learned)
    _line(out, "cue phrases + position", baseline)
    _line(out, "majority label", majority)
    out(f"  classifier CPU: {cpu_ms:.3f} ms a sentence (features + LR + Viterbi; encoding apart)")
    chosen = info["info"]["chosen"]
    out(f"\nchosen on dev: context {chosen['context']}, C {chosen['C']}, transition weight "
        f"{chosen['transition_weight']} (dev macro-F1 {chosen['dev_macro_f1']:.3f}); "
        f"training {info['info']['wall_seconds']} s wall, {info['info']['cpu_seconds']} CPU-s "
        "(encoding included)")
    out("dev grid (macro-F1):")
    for g in info["info"]["grid"]:
        out(f"  context {g['context']}  C {g['C']:<4}  transitions {g['transition_weight']:<4}"
            f"  acc {g['dev_accuracy']:.3f}  macro-F1 {g['dev_macro_f1']:.3f}")
    exact = sum(split_sentences(" ".join(a.sentences)) == [" ".join(s.split()) for s in a.sentences]
                for a in test)
    counts = sum(len(split_sentences(" ".join(a.sentences))) == len(a.sentences) for a in test)
    out(f"\nsplit_sentences vs gold boundaries (test): {exact}/{len(test)} abstracts identical, "
        f"{counts}/{len(test)} with the gold number of sentences")
    write_json(json, {"machine": machine(), "artifact": info["version"], "test": learned,
                      "cues": baseline, "majority": majority, "classifier_cpu_ms": cpu_ms,
                      "chosen": chosen, "split_identical": exact, "abstracts": len(test)})
