"""How a loaded cross-encoder runs: torch (any device) or OpenVINO (CPU), chosen once at load time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch

from rerank_plugins.runtime.openvino import openvino_available
from rerank_plugins.runtime.scoring import ScoreTokens, scoring_module

__all__ = ["RUNTIMES", "Forward", "Runtime", "resolve_runtime", "torch_forward"]

Runtime = Literal["auto", "torch", "openvino"]
RUNTIMES: tuple[str, ...] = ("auto", "torch", "openvino")
Forward = Callable[[dict[str, torch.Tensor]], torch.Tensor]
"""Model inputs (CPU tensors) to relevance logits (fp32, one row per input)."""


def resolve_runtime(runtime: str, device: str, precision: str) -> str:
    """``"auto"`` is OpenVINO on CPU when it is installed, torch elsewhere; check explicit choices."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
    on_cpu = torch.device(device).type == "cpu"
    if runtime == "auto":
        runtime = "openvino" if on_cpu and openvino_available() else "torch"
    if runtime == "openvino":
        if not on_cpu:
            raise ValueError(f"runtime='openvino' runs on the CPU only, not on device {device!r}")
        if not openvino_available():
            raise ImportError('runtime="openvino" needs OpenVINO: pip install "rerank-plugins[openvino]"')
        if precision == "fp16":
            raise ValueError("runtime='openvino' supports precision 'fp32', 'bf16' or 'int8', not 'fp16'")
    elif precision == "int8":
        raise ValueError(
            "precision='int8' runs through OpenVINO on the CPU: use device='cpu' and "
            'pip install "rerank-plugins[openvino]"'
        )
    return runtime


def torch_forward(network: Any, score_tokens: ScoreTokens | None = None) -> Forward:
    """The forward pass of ``scoring_module`` over a dict of named inputs."""
    module = scoring_module(network, score_tokens)

    def forward(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        logits: torch.Tensor = module(inputs["input_ids"], inputs["attention_mask"], *_token_types(inputs))
        return logits

    return forward


def _token_types(inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    return (inputs["token_type_ids"],) if "token_type_ids" in inputs else ()
