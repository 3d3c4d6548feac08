"""The two shapes of a forward pass every runtime returns, and the plain torch one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from rerank_plugins.runtime.packed import PackedInputs
from rerank_plugins.runtime.scoring import ScoreTokens, scoring_module

__all__ = ["Forward", "PackedForward", "torch_forward"]

Forward = Callable[[dict[str, torch.Tensor]], torch.Tensor]
"""Model inputs (CPU tensors) to relevance logits (fp32, one row per input)."""

PackedForward = Callable[[PackedInputs], torch.Tensor]
"""A packed batch (on the model's device) to relevance logits, one row per sequence."""


def torch_forward(network: Any, score_tokens: ScoreTokens | None = None) -> Forward:
    """The forward pass of ``scoring_module`` over a dict of named inputs."""
    module = scoring_module(network, score_tokens)

    def forward(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        logits: torch.Tensor = module(inputs["input_ids"], inputs["attention_mask"], *_token_types(inputs))
        return logits

    return forward


def _token_types(inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    return (inputs["token_type_ids"],) if "token_type_ids" in inputs else ()
