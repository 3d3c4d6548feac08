"""OpenVINO runtime: export a cross-encoder once, cache the IR on disk, compile it for this CPU.

OpenVINO's CPU kernels fuse attention, layer norm and activations and run bf16 and int8 matmuls
natively (AVX512-BF16, VNNI, AMX). ``int8`` stores int8 weights (NNCF, per output channel) and
quantises activations on the fly in small groups, so it needs no calibration data.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rerank_plugins._optional import installed, require
from rerank_plugins.devices import cpu_has_native_bf16
from rerank_plugins.runtime.exporting import (
    cache_root,
    example_inputs,
    export_key,
    graph_inputs,
    save_atomically,
)
from rerank_plugins.runtime.forward import Forward
from rerank_plugins.runtime.interface import ModelRuntime
from rerank_plugins.runtime.scoring import ScoreTokens, scoring_module

__all__ = ["SHAPE_STEP", "OpenVINORuntime", "cache_root", "openvino_available", "openvino_forward"]

logger = logging.getLogger(__name__)

SHAPE_STEP = 16
"""OpenVINO batches are padded to a multiple of this many tokens: it keeps one compiled kernel set per
length bucket, so memory stays flat over many batch shapes (a few % more padding)."""
DYNAMIC_QUANTIZATION_GROUP = 64
"""Activation values per int8 scale in ``int8``: smaller is closer to fp32, larger is faster."""
_FORMAT = 2  # bump when the exported graph changes, so old cache entries are not reused


def openvino_available() -> bool:
    """True when the ``openvino`` extra is installed."""
    return installed("openvino")


def _export(module: nn.Module, example: dict[str, torch.Tensor], quantise: bool, target: Path) -> None:
    """Convert to OpenVINO IR (dynamic batch and length) and save it under ``target`` atomically.

    ``example`` holds real inputs of the model (token ids within its vocabulary and positions), with
    one padded row so no branch that skips the mask is traced.
    """
    ov = require("openvino", "openvino")
    input_names = list(example)
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shapes the dynamic inputs below cover
        converted = ov.convert_model(
            module,
            example_input=tuple(example.values()),
            input=[(name, [-1, -1], ov.Type.i64) for name in input_names],
        )
    if quantise:
        nncf = require("nncf", "openvino")
        nncf_logger = logging.getLogger("nncf")
        level = nncf_logger.level
        nncf_logger.setLevel(logging.WARNING)  # its INFO is a table printed to stdout
        try:
            converted = nncf.compress_weights(converted, mode=nncf.CompressWeightsMode.INT8_ASYM)
        finally:
            nncf_logger.setLevel(level)

    def write(path: Path) -> None:
        ov.save_model(converted, path, compress_to_fp16=False)

    save_atomically(target, "model.xml", write)


def openvino_forward(
    module: nn.Module,
    example: dict[str, torch.Tensor],
    precision: str,
    native_bf16: bool,
    source: dict[str, Any],
) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
    """Compile ``module`` (a ``scoring_module``) with OpenVINO in ``precision`` (fp32, bf16 or int8).

    It is exported on first use from ``example`` inputs and cached under a key of the weights' identity.
    """
    ov = require("openvino", "openvino")
    quantise = precision == "int8"
    input_names = list(example)
    network = getattr(module, "network", module)
    weights = "int8" if quantise else "fp32"
    facts = {**source, "weights": weights, "inputs": input_names, "module": type(module).__name__}
    key = export_key(facts, network, openvino=ov.__version__, format=_FORMAT)
    target = cache_root() / "openvino" / key
    if not (target / "model.xml").is_file():
        logger.info("exporting %s to OpenVINO (%s weights) in %s", source.get("name"), precision, target)
        _export(module, example, quantise, target)
    hint = "bf16" if precision == "bf16" or (quantise and native_bf16) else "f32"
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"}
    if quantise:
        config["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = str(DYNAMIC_QUANTIZATION_GROUP)
    compiled = ov.Core().compile_model(target / "model.xml", "CPU", config)

    def forward(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        request = compiled.create_infer_request()  # one per call: requests are not shared between threads
        result = request.infer({name: inputs[name].numpy() for name in input_names})
        return torch.from_numpy(result[compiled.output(0)].copy())

    return forward


class OpenVINORuntime(ModelRuntime):
    """OpenVINO on the CPU in fp32, bf16 or int8; batches padded to a multiple of ``SHAPE_STEP`` tokens."""

    name = "openvino"
    label = "OpenVINO"
    extra = "openvino"
    device_types = ("cpu",)
    precisions = ("fp32", "bf16", "int8")

    def available(self) -> bool:
        return openvino_available()

    def prepare(
        self, network: Any, tokenizer: Any, score_tokens: ScoreTokens | None, precision: str, source: dict[str, Any]
    ) -> Forward:
        module = scoring_module(network, score_tokens)
        example = example_inputs(tokenizer, graph_inputs(network, tokenizer, score_tokens))
        forward = openvino_forward(module, example, precision, cpu_has_native_bf16(), source)
        network.to("meta")  # OpenVINO holds its own weights; keep the module tree (config, shapes), free the memory
        return forward

    def width(self, length: int, max_positions: int) -> int:
        """``length`` rounded up to the next ``SHAPE_STEP``, but not past the model's positions."""
        return min(-(-length // SHAPE_STEP) * SHAPE_STEP, max(length, max_positions))

    def max_padding(self, config: Any) -> int | None:
        """OpenVINO's attention gives NaN for a query that sees no key. A pad token further than half a
        local-attention window (ModernBERT) from every real token sees none, and its NaN values reach the
        real tokens through the next layer, so batches of such models keep padding within half a window."""
        window = getattr(config, "local_attention", None)
        if not isinstance(window, int) or window <= 0:
            return None
        return max(0, window // 2 - SHAPE_STEP)
