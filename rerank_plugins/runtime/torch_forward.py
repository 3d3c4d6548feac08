"""The torch runtime's forward pass: the scoring module in fp32, bf16 or fp16, with the heads kept in fp32."""

from __future__ import annotations

from typing import Any

import torch

from rerank_plugins.runtime.forward import Forward, ScoreTokens
from rerank_plugins.runtime.scoring import scoring_module

__all__ = ["DTYPES", "keep_head_in_fp32", "torch_forward"]

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
"""The torch dtype of each floating-point precision."""


def torch_forward(network: Any, score_tokens: ScoreTokens | None = None) -> Forward:
    """The forward pass of ``scoring_module`` over a dict of named inputs."""
    module = scoring_module(network, score_tokens)

    def forward(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        logits: torch.Tensor = module(inputs["input_ids"], inputs["attention_mask"], *_token_types(inputs))
        return logits

    return forward


def _token_types(inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    return (inputs["token_type_ids"],) if "token_type_ids" in inputs else ()


def _upcast_inputs(module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(arg.float() if isinstance(arg, torch.Tensor) and arg.is_floating_point() else arg for arg in args)


def keep_head_in_fp32(network: Any) -> None:
    """Run the pooler and classifier in fp32 so low-precision models still give finely resolved scores."""
    heads = (
        getattr(network, "classifier", None),
        getattr(network.base_model, "pooler", None),
        getattr(network, "pooler", None),  # DeBERTa
        getattr(network, "head", None),  # ModernBERT
    )
    for head in heads:
        if isinstance(head, torch.nn.Module):
            head.float()
            head.register_forward_pre_hook(_upcast_inputs)
