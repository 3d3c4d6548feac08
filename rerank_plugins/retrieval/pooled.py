"""A sentence-transformers bi-encoder on OpenVINO: encoder, pooling and normalisation in one compiled graph.

The common bi-encoders (all-MiniLM-L6-v2 and its kind) are a transformer, then mean or [CLS] pooling,
then L2 normalisation. Compiled as one graph they embed with the same fast bf16 kernels as the
cross-encoder; anything else keeps sentence-transformers' own ``encode``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from rerank_plugins.runtime.openvino_export import openvino_forward
from rerank_plugins.runtime.openvino_graph import SHAPE_STEP

__all__ = ["PooledEncoder", "pooled_encoder_parts", "openvino_embed"]

EXAMPLE_TEXTS = ["Vitamin D supplementation and bone mineral density in older adults. " * 8, "cells"]
"""A long and a short text (so one row is padded): the example the export is traced with."""


class PooledEncoder(nn.Module):
    """Token ids to unit-length sentence embeddings: the network's last hidden states, pooled, normalised."""

    def __init__(self, network: nn.Module, pooling: str) -> None:
        super().__init__()
        self.network = network
        self.pooling = pooling

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        hidden = self.network(input_ids=input_ids, attention_mask=attention_mask, **extra)[0]
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return nn.functional.normalize(pooled, p=2.0, dim=1)


def _pooling_mode(module: Any) -> str | None:
    config = module.get_config_dict() if hasattr(module, "get_config_dict") else {}
    mode = config.get("pooling_mode")  # sentence-transformers >= 6
    if mode is None:  # earlier releases: one flag per mode
        flags = [name for name in ("cls", "mean") if config.get(f"pooling_mode_{name}_token{'s' * (name == 'mean')}")]
        others = [key for key, value in config.items() if key.startswith("pooling_mode_") and value]
        mode = flags[0] if len(flags) == 1 and len(others) == 1 else None
    return mode if mode in ("mean", "cls") else None


def pooled_encoder_parts(model: Any) -> tuple[nn.Module, str, Any, int] | None:
    """(network, pooling, tokenizer, max_length) of a Transformer -> Pooling -> Normalize bi-encoder;
    ``None`` for any other layout, which then keeps sentence-transformers' own ``encode``."""
    modules = list(model)
    names = [type(module).__name__ for module in modules]
    if names not in (["Transformer", "Pooling", "Normalize"], ["Transformer", "Pooling"]):
        return None
    network = getattr(modules[0], "auto_model", None)
    pooling = _pooling_mode(modules[1])
    tokenizer = getattr(model, "tokenizer", None)
    if network is None or pooling is None or not getattr(tokenizer, "is_fast", False):
        return None
    return network, pooling, tokenizer, int(model.max_seq_length or 512)


def openvino_embed(
    model_name: str, parts: tuple[nn.Module, str, Any, int], precision: str
) -> Callable[[list[str], int], np.ndarray]:
    """Compile ``parts`` with OpenVINO (exported once, cached) and return ``embed(texts, batch_size)``."""
    network, pooling, tokenizer, max_length = parts
    names = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in tokenizer.model_input_names]
    example = dict(tokenizer(EXAMPLE_TEXTS, padding=True, truncation=True, max_length=max_length, return_tensors="pt"))
    example = {name: example[name] for name in names}
    source = {"name": model_name, "kind": "bi-encoder", "pooling": pooling, "max_length": max_length}
    forward = openvino_forward(PooledEncoder(network, pooling), example, precision, source)

    def embed(texts: list[str], batch_size: int) -> np.ndarray:
        order = np.argsort([len(text) for text in texts], kind="stable")[::-1]  # similar lengths share a batch
        batches = []
        for start in range(0, len(texts), batch_size):
            encoded = tokenizer(
                [texts[i] for i in order[start : start + batch_size]],
                padding=True,
                truncation=True,
                max_length=max_length,
                pad_to_multiple_of=SHAPE_STEP,
                return_tensors="pt",
            )
            batches.append(forward({name: encoded[name] for name in names}).numpy())
        vectors = np.empty((len(texts), batches[0].shape[1]), dtype=np.float32)
        vectors[order] = np.concatenate(batches)  # back to the input order
        return vectors

    return embed
