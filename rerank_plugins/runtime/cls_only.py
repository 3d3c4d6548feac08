"""A BERT cross-encoder forward pass whose last layer is computed for the [CLS] token only.

The relevance score reads only the [CLS] row of the last layer, so that layer's queries, attention
output and feed-forward are needed for one token per pair, not all of them: about a seventh of the
work of a six-layer model, with the same result (equal to the full forward pass to float rounding).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ClsOnlyBert", "supports_cls_only"]


def supports_cls_only(network: Any) -> bool:
    """True for plain BERT classifiers (absolute positions, encoder only), the layout this module knows."""
    config = getattr(network, "config", None)
    return (
        getattr(config, "model_type", None) == "bert"
        and getattr(config, "position_embedding_type", "absolute") == "absolute"
        and not getattr(config, "is_decoder", False)
        and not getattr(config, "chunk_size_feed_forward", 0)
        and hasattr(network, "bert")
        and getattr(network.bert, "pooler", None) is not None
        and hasattr(network, "classifier")
    )


def _layer(layer: Any, queries: torch.Tensor, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """One encoder layer for the rows in ``queries``, attending over all of ``hidden``."""
    attention = layer.attention.self
    batch, heads, size = hidden.shape[0], attention.num_attention_heads, attention.attention_head_size

    def split(states: torch.Tensor) -> torch.Tensor:
        return states.view(batch, -1, heads, size).transpose(1, 2)

    context = F.scaled_dot_product_attention(
        split(attention.query(queries)),
        split(attention.key(hidden)),
        split(attention.value(hidden)),
        attn_mask=mask,
        scale=attention.scaling,
    )
    context = context.transpose(1, 2).reshape(batch, -1, heads * size)
    attended = layer.attention.output(context, queries)
    result: torch.Tensor = layer.output(layer.intermediate(attended), attended)
    return result


class ClsOnlyBert(nn.Module):
    """Relevance logits of a ``BertForSequenceClassification``, sharing its weights (nothing is copied)."""

    def __init__(self, network: Any) -> None:
        super().__init__()
        if not supports_cls_only(network):
            raise ValueError(f"{type(network).__name__} is not a plain BERT classifier")
        self.network = network

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        bert = self.network.bert
        hidden = bert.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        mask = attention_mask[:, None, None, :].bool()
        layers = list(bert.encoder.layer)
        for layer in layers[:-1]:
            hidden = _layer(layer, hidden, hidden, mask)
        first = _layer(layers[-1], hidden[:, :1], hidden, mask)
        logits: torch.Tensor = self.network.classifier(bert.pooler(first))
        return logits
