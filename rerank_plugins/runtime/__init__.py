"""How a loaded cross-encoder runs: torch (any device), OpenVINO or ONNX Runtime (CPU), chosen once at load time."""

from __future__ import annotations

from typing import Literal

from rerank_plugins.runtime.forward import Forward, torch_forward
from rerank_plugins.runtime.table import AUTO_ORDER, RUNTIME_TABLE

__all__ = ["RUNTIMES", "Forward", "Runtime", "resolve_runtime", "runtime_precisions", "torch_forward"]

Runtime = Literal["auto", "torch", "openvino", "onnx"]
RUNTIMES: tuple[str, ...] = ("auto", *RUNTIME_TABLE)


def resolve_runtime(runtime: str, device: str, precision: str) -> str:
    """``"auto"`` is OpenVINO on CPU when it is installed, torch elsewhere; check explicit choices (the precision
    too, unless it is still ``"auto"``: ``devices.resolve_precision`` then picks one the runtime runs)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
    if runtime == "auto":
        runtime = next(
            name for name in AUTO_ORDER if RUNTIME_TABLE[name].runs_on(device) and RUNTIME_TABLE[name].available()
        )
    RUNTIME_TABLE[runtime].check(device, "fp32" if precision == "auto" else precision)
    return runtime


def runtime_precisions(runtime: str) -> tuple[str, ...]:
    """The precisions a resolved runtime runs in."""
    return RUNTIME_TABLE[runtime].precisions
