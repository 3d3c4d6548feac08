"""The module each model family is scored through, shared by the torch and OpenVINO runtimes."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from rerank_plugins.runtime.causal import YesNoMargin
from rerank_plugins.runtime.cls_only import ClsOnlyEncoder, supports_cls_only
from rerank_plugins.runtime.forward import ScoreTokens

__all__ = ["ScoreTokens", "scoring_module"]



class _Logits(nn.Module):
    """Any ``*ForSequenceClassification`` as a function of tensors to logits."""

    def __init__(self, network: Any) -> None:
        super().__init__()
        self.network = network

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        extra = {"token_type_ids": rest[0]} if rest else {}
        logits: torch.Tensor = self.network(input_ids=input_ids, attention_mask=attention_mask, **extra).logits
        return logits


def scoring_module(network: Any, score_tokens: ScoreTokens | None) -> nn.Module:
    """The fastest exact module from (input_ids, attention_mask[, token_type_ids]) to relevance logits.

    Causal LMs score their ``score_tokens`` (yes, no) at the last position; BERT-layout encoders run
    their last layer for the first token only; every other classifier runs its own forward pass.
    """
    if score_tokens is not None:
        return YesNoMargin(network, *score_tokens)
    if supports_cls_only(network):
        return ClsOnlyEncoder(network)
    return _Logits(network)
