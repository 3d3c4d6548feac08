"""The torch runtime: the network as loaded, on any device, in fp32, bf16 or fp16 (heads kept in fp32).

Torch is imported when a model is set up, not with this module, so the runtime table stays torch-free.
"""

from __future__ import annotations

from typing import Any

from rerank_plugins._optional import installed
from rerank_plugins.runtime.forward import Forward, PackedForward, ScoreTokens
from rerank_plugins.runtime.interface import ModelRuntime

__all__ = ["TorchRuntime"]


class TorchRuntime(ModelRuntime):
    """The loaded torch network on its own device; [CLS]-only encoders also run packed (unpadded) batches."""

    name = "torch"
    label = "PyTorch"
    extra = "torch"
    precisions = ("fp32", "bf16", "fp16")

    def available(self) -> bool:
        return installed("torch")

    def precision_refusal(self, precision: str) -> str:
        if precision == "int8":
            return (
                "precision='int8' runs through OpenVINO or ONNX Runtime on the CPU: use device='cpu' and "
                "runtime='openvino' or 'onnx'"
            )
        return super().precision_refusal(precision)

    def prepare(
        self, network: Any, tokenizer: Any, score_tokens: ScoreTokens | None, precision: str, source: dict[str, Any]
    ) -> Forward:
        from rerank_plugins.runtime.torch_forward import DTYPES, keep_head_in_fp32, torch_forward

        if precision != "fp32":
            network.to(DTYPES[precision])
            keep_head_in_fp32(network)
        return torch_forward(network, score_tokens)

    def packed(self, network: Any, score_tokens: ScoreTokens | None) -> PackedForward | None:
        """``PackedClsOnlyEncoder`` for [CLS]-only encoders; causal LMs and other families have none."""
        from rerank_plugins.runtime.cls_only import supports_cls_only
        from rerank_plugins.runtime.packed import PackedClsOnlyEncoder

        if score_tokens is not None or not supports_cls_only(network):
            return None
        return PackedClsOnlyEncoder(network)
