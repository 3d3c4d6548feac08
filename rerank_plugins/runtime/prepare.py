"""Setting a loaded network up for its runtime and precision: fp32 heads, or an OpenVINO export.

Exports are traced with real inputs of the model's own tokenizer, so every family's embeddings,
positions and attention branches see what they see in use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from rerank_plugins.devices import DTYPES, cpu_has_native_bf16
from rerank_plugins.runtime import Forward, torch_forward
from rerank_plugins.runtime.cls_only import supports_cls_only
from rerank_plugins.runtime.openvino import SHAPE_STEP, openvino_forward
from rerank_plugins.runtime.packed import PackedClsOnlyEncoder, PackedInputs
from rerank_plugins.runtime.scoring import ScoreTokens, scoring_module

__all__ = ["PackedForward", "max_padding", "packed_forward", "prepare_forward"]

PackedForward = Callable[[PackedInputs], torch.Tensor]
"""A packed batch (on the model's device) to relevance logits, one row per sequence."""


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


EXAMPLE_TOKENS = 320
"""Length of the long row an export is traced with: past ModernBERT's 128-token local attention, so
the traced graph takes the branch every long input takes."""


def max_padding(runtime: str, config: Any) -> int | None:
    """OpenVINO's attention gives NaN for a query that sees no key. A pad token further than half a
    local-attention window (ModernBERT) from every real token sees none, and its NaN values reach the
    real tokens through the next layer, so batches of such models keep padding within half a window."""
    window = getattr(config, "local_attention", None)
    if runtime != "openvino" or not isinstance(window, int) or window <= 0:
        return None
    return max(0, window // 2 - SHAPE_STEP)


def _example_inputs(tokenizer: Any, names: list[str]) -> dict[str, torch.Tensor]:
    """Two real pairs of the model's own tokens, right-padded: the example an export is traced with."""
    long_text = " ".join(["Dicer binds the protein TRBP in human cells."] * 40)  # past local-attention windows
    rows = [
        tokenizer("which protein binds dicer", long_text, truncation="only_second", max_length=EXAMPLE_TOKENS),
        tokenizer("cells", "T cells.", truncation=True),
    ]
    width = max(len(row["input_ids"]) for row in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    example = {name: torch.zeros((len(rows), width), dtype=torch.long) for name in names}
    for index, row in enumerate(rows):
        length = len(row["input_ids"])
        example["input_ids"][index] = pad
        example["input_ids"][index, :length] = torch.tensor(row["input_ids"])
        example["attention_mask"][index, :length] = 1
        if "token_type_ids" in example and "token_type_ids" in row:
            example["token_type_ids"][index, :length] = torch.tensor(row["token_type_ids"])
    return example


def prepare_forward(
    model: str,
    revision: str | None,
    runtime: str,
    precision: str,
    network: Any,
    tokenizer: Any,
    score_tokens: ScoreTokens | None,
) -> Forward:
    """Set the network up for ``runtime`` and ``precision`` and return its forward pass."""
    if runtime == "openvino":
        names = ["input_ids", "attention_mask"]
        token_types = "token_type_ids" in getattr(tokenizer, "model_input_names", ())
        if score_tokens is None and token_types and getattr(network.config, "type_vocab_size", 2) > 0:
            names.append("token_type_ids")  # DeBERTa-v3 has none (type_vocab_size 0), so its graph takes none
        source = {"name": model, "revision": revision, "commit": getattr(network.config, "_commit_hash", None)}
        module = scoring_module(network, score_tokens)
        example = _example_inputs(tokenizer, names)
        forward = openvino_forward(module, example, precision, cpu_has_native_bf16(), source)
        network.to("meta")  # OpenVINO holds its own weights; keep the module tree (config, shapes), free the memory
        return forward
    if precision != "fp32":
        network.to(DTYPES[precision])
        _keep_head_in_fp32(network)
    return torch_forward(network, score_tokens)


def packed_forward(runtime: str, network: Any, score_tokens: ScoreTokens | None) -> PackedForward | None:
    """The unpadded forward pass of a torch [CLS]-only encoder (after ``prepare_forward``), else ``None``."""
    if runtime != "torch" or score_tokens is not None or not supports_cls_only(network):
        return None
    return PackedClsOnlyEncoder(network)
