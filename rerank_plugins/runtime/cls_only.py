"""An encoder cross-encoder forward pass whose last layer is computed for the first token only.

The relevance score reads only the first ([CLS] / ``<s>``) row of the last layer, so that layer's
queries, attention output and feed-forward are needed for one token per pair, not all of them: about
a seventh of the work of a six-layer model, with the same result (equal to the full forward pass to
float rounding). BERT, RoBERTa / XLM-R and ELECTRA share this layer structure and a first-token head.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "CLS_ONLY_FAMILIES",
    "ClsOnlyEncoder",
    "classify",
    "embed",
    "finish_layer",
    "require_cls_only",
    "supports_cls_only",
]

CLS_ONLY_FAMILIES = ("bert", "roberta", "xlm-roberta", "electra")
"""Model types whose classifiers read the first token of a BERT-layout encoder."""


def supports_cls_only(network: Any) -> bool:
    """True for encoder classifiers of a family above with absolute positions and a first-token head."""
    config = getattr(network, "config", None)
    model_type = getattr(config, "model_type", None)
    if model_type not in CLS_ONLY_FAMILIES or not hasattr(network, "classifier"):
        return False
    base = getattr(network, "base_model", None)
    first_token_head = model_type != "bert" or getattr(base, "pooler", None) is not None
    return (
        first_token_head
        and getattr(config, "position_embedding_type", "absolute") == "absolute"
        and not getattr(config, "is_decoder", False)
        and not getattr(config, "add_cross_attention", False)
        and not getattr(config, "chunk_size_feed_forward", 0)
        and hasattr(base, "embeddings")
        and hasattr(base, "encoder")
    )


def require_cls_only(network: Any) -> None:
    """Refuse a network the [CLS]-only passes cannot run."""
    if not supports_cls_only(network):
        raise ValueError(f"{type(network).__name__} is not an encoder classifier of the families {CLS_ONLY_FAMILIES}")


def embed(base: Any, **inputs: torch.Tensor | None) -> torch.Tensor:
    """The encoder's input embeddings, projected to the hidden size where ELECTRA's embeddings are smaller."""
    hidden: torch.Tensor = base.embeddings(**inputs)
    project = getattr(base, "embeddings_project", None)
    return project(hidden) if project is not None else hidden


def finish_layer(layer: Any, context: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
    """The rest of an encoder layer after attention: output projection, residual, feed-forward."""
    attended = layer.attention.output(context, queries)
    result: torch.Tensor = layer.output(layer.intermediate(attended), attended)
    return result


def classify(network: Any, first: torch.Tensor) -> torch.Tensor:
    """Relevance logits from the last layer's first-token rows, shaped (pairs, 1, hidden)."""
    pooler = getattr(network.base_model, "pooler", None)
    logits: torch.Tensor = network.classifier(pooler(first) if pooler is not None else first)
    return logits


def attention_scale(attention: Any) -> float:
    """1/sqrt(head size): what every BERT-style self-attention scales by (transformers 4.57 has no ``scaling``)."""
    return float(attention.attention_head_size**-0.5)


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
        scale=attention_scale(attention),
    )
    return finish_layer(layer, context.transpose(1, 2).reshape(batch, -1, heads * size), queries)


class ClsOnlyEncoder(nn.Module):
    """Relevance logits of a BERT, RoBERTa/XLM-R or ELECTRA classifier, sharing its weights (nothing copied)."""

    def __init__(self, network: Any) -> None:
        super().__init__()
        require_cls_only(network)
        self.network = network

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        base = self.network.base_model
        hidden = embed(base, input_ids=input_ids, token_type_ids=token_type_ids)
        mask = attention_mask[:, None, None, :].bool()
        layers = list(base.encoder.layer)
        for layer in layers[:-1]:
            hidden = _layer(layer, hidden, hidden, mask)
        return classify(self.network, _layer(layers[-1], hidden[:, :1], hidden, mask))
