"""The torch runtime: the network as loaded, on any device, in fp32, bf16 or fp16 (heads kept in fp32)."""

from __future__ import annotations

from typing import Any

import torch

from rerank_plugins.devices import DTYPES
from rerank_plugins.runtime.cls_only import supports_cls_only
from rerank_plugins.runtime.forward import Forward, PackedForward, torch_forward
from rerank_plugins.runtime.interface import ModelRuntime
from rerank_plugins.runtime.packed import PackedClsOnlyEncoder
from rerank_plugins.runtime.scoring import ScoreTokens

__all__ = ["TorchRuntime"]


def _upcast_inputs(module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(arg.float() if isinstance(arg, torch.Tensor) and arg.is_floating_point() else arg for arg in args)


def _keep_head_in_fp32(network: Any) -> None:
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


class TorchRuntime(ModelRuntime):
    """The loaded torch network on its own device; [CLS]-only encoders also run packed (unpadded) batches."""

    name = "torch"
    label = "torch"
    precisions = ("fp32", "bf16", "fp16")

    def precision_refusal(self, precision: str) -> str:
        if precision == "int8":
            return (
                "precision='int8' runs through OpenVINO on the CPU: use device='cpu' and "
                'pip install "rerank-plugins[openvino]"'
            )
        return super().precision_refusal(precision)

    def prepare(
        self, network: Any, tokenizer: Any, score_tokens: ScoreTokens | None, precision: str, source: dict[str, Any]
    ) -> Forward:
        if precision != "fp32":
            network.to(DTYPES[precision])
            _keep_head_in_fp32(network)
        return torch_forward(network, score_tokens)

    def packed(self, network: Any, score_tokens: ScoreTokens | None) -> PackedForward | None:
        """``PackedClsOnlyEncoder`` for [CLS]-only encoders; causal LMs and other families have none."""
        if score_tokens is not None or not supports_cls_only(network):
            return None
        return PackedClsOnlyEncoder(network)
