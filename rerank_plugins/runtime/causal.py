"""A causal-LM reranker's score: logit("yes") - logit("no") for the token after each prompt.

sentence-transformers computes the full vocabulary logits and reads two of them at the last
position. Only those two rows of the output projection are needed, at one position per pair, so
this module projects the last real token's hidden state onto them alone: the same score without a
(batch x length x vocabulary) tensor, which for a 150k-token vocabulary is most of the memory.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["YesNoMargin"]


class YesNoMargin(nn.Module):
    """Relevance logits (one column) of a ``*ForCausalLM`` over right-padded prompts, sharing its weights."""

    def __init__(self, network: Any, true_id: int, false_id: int | None) -> None:
        super().__init__()
        self.network = network
        self.token_ids = [true_id] if false_id is None else [true_id, false_id]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        outputs = self.network.base_model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        hidden = outputs.last_hidden_state
        last = attention_mask.sum(dim=1) - 1
        final = hidden[torch.arange(hidden.shape[0], device=hidden.device), last].float()
        projection = self.network.get_output_embeddings()
        logits = final @ projection.weight[self.token_ids].float().T
        if getattr(projection, "bias", None) is not None:
            logits = logits + projection.bias[self.token_ids].float()
        cap = getattr(self.network.config, "final_logit_softcapping", None)
        if cap:
            logits = cap * torch.tanh(logits / cap)
        margin: torch.Tensor = logits[:, :1] if len(self.token_ids) == 1 else logits[:, :1] - logits[:, 1:]
        return margin
