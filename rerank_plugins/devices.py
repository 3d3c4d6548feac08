"""Choosing the device and the numeric precision a model runs in.

Torch-free until a device other than the CPU is asked about, so the light install (no torch) runs here too.
"""

from __future__ import annotations

import logging
from typing import Literal

from rerank_plugins._optional import installed
from rerank_plugins.cpu import cpu_flags
from rerank_plugins.runtime.interface import device_type

__all__ = ["Precision", "PRECISIONS", "resolve_device", "resolve_precision", "cpu_has_native_bf16"]

logger = logging.getLogger(__name__)

Precision = Literal["auto", "fp32", "bf16", "fp16", "int8"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16", "int8")


def resolve_device(device: str | None) -> str:
    """``None``/``"auto"`` picks cuda, then mps, then cpu; anything else must parse as a torch device."""
    if device in (None, "auto", "cpu") and not installed("torch"):
        return "cpu"  # the light install runs on the CPU only
    if not isinstance(device, str) and device is not None:
        raise TypeError(f"device must be a str such as 'cpu' or 'cuda:0', got {type(device).__name__}")
    if not installed("torch"):
        raise ImportError(
            f'device {device!r} needs PyTorch; without it only the CPU is used: pip install "rerank-plugins[torch]"'
        )
    import torch

    if device is None or device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    try:
        parsed = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"device {device!r} is not a torch device (try 'cpu', 'cuda', 'cuda:0', 'mps')") from error
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for CUDA, but torch sees no CUDA device here")
    return str(parsed)


def cpu_has_native_bf16() -> bool:
    """True when the CPU executes bf16 matmuls natively (AVX512-BF16 or AMX), where bf16 is a real speed-up."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def resolve_precision(precision: str, device: str, supported: tuple[str, ...] | None = None) -> str:
    """Map ``"auto"`` to the fastest safe precision for ``device`` that the runtime runs (``supported``; fp32
    where it runs neither fp16 nor bf16, as ONNX Runtime does), so every runtime works with no precision given;
    check explicit choices."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    kind = device_type(device)
    if precision == "auto":
        fastest = "fp16" if kind == "cuda" else "bf16" if kind == "cpu" and cpu_has_native_bf16() else "fp32"
        return fastest if supported is None or fastest in supported else "fp32"
    if kind == "cpu" and precision == "bf16" and not cpu_has_native_bf16():
        logger.warning("precision='bf16' on a CPU without native bf16: scores are right but it may be slow")
    if kind == "cpu" and precision == "fp16":
        logger.warning("precision='fp16' on CPU is usually slower than fp32; consider 'bf16' or 'fp32'")
    return precision
