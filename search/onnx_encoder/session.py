"""ONNX Runtime sessions as the export check and the encoder both open them, and the cores
they may use."""

from __future__ import annotations

import os
from pathlib import Path


def cpu_count() -> int:
    """Cores this process may run on (respects affinity/cgroup pinning better than cpu_count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def ort_session(path: Path, *, threads: int | None = None, spinning: bool = True,
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
