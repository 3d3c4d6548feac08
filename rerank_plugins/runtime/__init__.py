"""How a loaded cross-encoder runs: torch (any device), OpenVINO or ONNX Runtime (CPU), chosen once at load time."""

from __future__ import annotations

from typing import Any, Literal, get_args

from rerank_plugins.runtime.forward import Forward
from rerank_plugins.runtime.table import AUTO_ORDER, RUNTIME_TABLE

__all__ = ["RUNTIMES", "Forward", "Runtime", "resolve_runtime", "runtime_precisions", "torch_forward"]

Runtime = Literal["auto", "torch", "openvino", "onnx"]
RUNTIMES: tuple[str, ...] = ("auto", *RUNTIME_TABLE)
if get_args(Runtime) != RUNTIMES:  # the literal is written out for type checkers; the table is the truth
    raise ImportError(f"runtime.Runtime {get_args(Runtime)} differs from the runtime table {RUNTIMES}")


def __getattr__(name: str) -> Any:
    """``torch_forward`` on first use, so importing the runtimes needs no torch (PEP 562)."""
    if name == "torch_forward":
        from rerank_plugins.runtime.torch_forward import torch_forward

        return torch_forward
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def resolve_runtime(runtime: str, device: str, precision: str) -> str:
    """``"auto"`` is OpenVINO on CPU when it is installed, torch elsewhere; check explicit choices (the precision
    too, unless it is still ``"auto"``: ``devices.resolve_precision`` then picks one the runtime runs)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
    if runtime == "auto":
        engines = [(name, RUNTIME_TABLE[name]) for name in AUTO_ORDER]
        usable = [name for name, engine in engines if engine.runs_on(device) and engine.available()]
        runtime = usable[0] if usable else "torch"  # torch's own check then names the extra to install
    RUNTIME_TABLE[runtime].check(device, "fp32" if precision == "auto" else precision)
    return runtime


def runtime_precisions(runtime: str) -> tuple[str, ...]:
    """The precisions a resolved runtime runs in."""
    return RUNTIME_TABLE[runtime].precisions
