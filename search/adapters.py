"""Per-aspect linear adapters: the learned part of the aspect vectors.

An adapter W (d x d) maps a paper's generic vector to its aspect vector:
    aspect = normalize(alpha * normalize(generic @ W) + (1 - alpha) * generic)
Trained by `python manage.py train_aspect_adapters` (contrastive, on pairs of papers that share
a Papers with Code / SciREX label), chosen by `manage.py bench aspects-adapters` (docs/benchmarks.md).
The artifact is versioned: its version is part of the aspect spaces' identity, so a new
artifact is filled in the background and switched on when complete.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings

from search.vectors import l2_normalise as l2n


@dataclass(frozen=True)
class Adapter:
    weights: np.ndarray  # (d, d) float32
    alpha: float


@dataclass(frozen=True)
class AdapterSet:
    version: str
    model: str  # the encoder the adapters were trained on (its name and version)
    adapters: dict[str, Adapter]

    def apply(self, aspect: str, generic: np.ndarray) -> np.ndarray:
        adapter = self.adapters.get(aspect)
        if adapter is None or adapter.weights.shape[0] != generic.shape[1]:
            return l2n(generic)  # no measured gain for this aspect: the generic vector
        projected = l2n(generic.astype(np.float32) @ adapter.weights)
        return l2n(adapter.alpha * projected + (1.0 - adapter.alpha) * generic)


def save(path: Path, *, model: str, adapters: dict[str, Adapter], info: dict) -> str:
    """Write an artifact; its version is a hash of the weights, so equal weights = equal version."""
    import hashlib

    digest = hashlib.sha256()
    for aspect in sorted(adapters):
        digest.update(aspect.encode())
        digest.update(adapters[aspect].weights.astype(np.float16).tobytes())
        digest.update(str(adapters[aspect].alpha).encode())
    version = digest.hexdigest()[:10]
    meta = {"version": version, "model": model, "info": info,
            "alpha": {a: ad.alpha for a, ad in adapters.items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict = {f"W_{a}": ad.weights.astype(np.float16) for a, ad in adapters.items()}
    np.savez_compressed(path, meta=json.dumps(meta), **arrays)
    return version


@functools.cache
def _load(path: str) -> AdapterSet | None:
    file = Path(path)
    if not file.exists():
        return None
    with np.load(file) as data:
        meta = json.loads(str(data["meta"]))
        adapters = {key[2:]: Adapter(data[key].astype(np.float32), float(meta["alpha"][key[2:]]))
                    for key in data.files if key.startswith("W_")}
    return AdapterSet(meta["version"], meta["model"], adapters)


def current(encoder) -> AdapterSet | None:
    """The configured artifact, if it was trained on this encoder's model (an int8 export
    counts as its source model: search.embedders.model_key); else aspects use generic."""
    from search.embedders import model_key

    adapters = _load(str(settings.ASPECT_ADAPTERS))
    return adapters if adapters is not None and adapters.model == model_key(encoder) else None
