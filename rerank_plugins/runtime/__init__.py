"""How a loaded cross-encoder runs: torch (any device), OpenVINO or ONNX Runtime (CPU), chosen once at load time."""

from __future__ import annotations

from typing import Literal

from rerank_plugins.runtime.forward import Forward, torch_forward
from rerank_plugins.runtime.table import AUTO_ORDER, RUNTIME_TABLE

__all__ = ["RUNTIMES", "Forward", "Runtime", "resolve_runtime", "torch_forward"]

Runtime = Literal["auto", "torch", "openvino", "onnx"]
RUNTIMES: tuple[str, ...] = ("auto", *RUNTIME_TABLE)


def resolve_runtime(runtime: str, device: str, precision: str) -> str:
    """``"auto"`` is OpenVINO on CPU when it is installed, torch elsewhere; check explicit choices."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
    if runtime == "auto":
        runtime = next(
            name for name in AUTO_ORDER if RUNTIME_TABLE[name].runs_on(device) and RUNTIME_TABLE[name].available()
        )
    RUNTIME_TABLE[runtime].check(device, precision)
    return runtime
