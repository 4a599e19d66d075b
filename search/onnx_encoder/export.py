"""Exporting a sentence-transformers folder to ONNX and quantising it to int8, with the
manifest that says whether an export is current (search.onnx_encoder explains the choices)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from search.onnx_encoder.session import ort_session

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
        data["extra"] = dict(self.extra)
        return data


def ffn_output_matmuls(layers: Sequence[int]) -> tuple[str, ...]:
    """Node names of the FFN output projections (their input is the GELU output, whose
    outlier channels per-tensor activation quantisation handles worst) in our export."""
    return tuple(f"/inner/encoder/layer.{i}/output/dense/MatMul" for i in layers)


# Keeping the FFN output MatMuls of layers 0 and 2 in fp32 (2 of 36 MatMuls) cuts the cosine
# error by ~40% (mean cosine to fp32 0.9952 -> 0.9972, recall@10 0.906 -> 0.926; per-layer
# sensitivity measured on MiniLM-L6, `manage.py bench encoders` int8-all vs int8). Names that do
# not exist in another model's graph are ignored by the quantiser.
DEFAULT_QUANT = QuantSettings(nodes_to_exclude=ffn_output_matmuls((0, 2)))


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
    session = ort_session(tmp, threads=1)
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


def default_out_dir(model_dir: Path) -> Path:
    """var/models/onnx-int8-<model> in the project checkout (git-ignored)."""
    return Path(__file__).resolve().parents[2] / "var" / "models" / \
        f"onnx-int8-{_source_name(Path(model_dir))}"
