"""Converting a torch module to OpenVINO IR, once per weights (int8 weights by NNCF), and compiling it for torch
callers such as the pooled bi-encoder."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rerank_plugins._optional import require
from rerank_plugins.runtime.exporting import announced, cache_root, export_key, save_atomically
from rerank_plugins.runtime.openvino_graph import GRAPH_FILE, compiled_forward

__all__ = ["openvino_export_path", "openvino_forward"]

logger = logging.getLogger(__name__)

_FORMAT = 2  # bump when the exported graph changes, so old cache entries are not reused


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
        nncf = require("nncf", "export")
        nncf_logger = logging.getLogger("nncf")
        level = nncf_logger.level
        nncf_logger.setLevel(logging.WARNING)  # its INFO is a table printed to stdout
        try:
            converted = nncf.compress_weights(converted, mode=nncf.CompressWeightsMode.INT8_ASYM)
        finally:
            nncf_logger.setLevel(level)

    def write(path: Path) -> None:
        ov.save_model(converted, path, compress_to_fp16=False)

    save_atomically(target, GRAPH_FILE, write)


def openvino_export_path(
    module: nn.Module, example: dict[str, torch.Tensor], precision: str, source: dict[str, Any]
) -> Path:
    """The cached IR (``model.xml`` beside its ``model.bin``) of ``module``: int8 weights for ``int8``, else fp32."""
    ov = require("openvino", "openvino")
    quantise = precision == "int8"
    network = getattr(module, "network", module)
    facts = {**source, "weights": "int8" if quantise else "fp32", "inputs": list(example)}
    facts["module"] = type(module).__name__
    target = cache_root() / "openvino" / export_key(facts, network, openvino=ov.__version__, format=_FORMAT)
    if not (target / GRAPH_FILE).is_file():
        logger.info("exporting %s to OpenVINO (%s weights) in %s", source.get("name"), precision, target)
        with announced(f"Exporting {source.get('name')} to OpenVINO ({'int8' if quantise else 'fp32'} weights)"):
            _export(module, example, quantise, target)
    return target / GRAPH_FILE


def openvino_forward(
    module: nn.Module, example: dict[str, torch.Tensor], precision: str, source: dict[str, Any]
) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
    """Compile ``module`` with OpenVINO in ``precision`` (fp32, bf16 or int8), torch tensors in and out.

    It is exported on first use from ``example`` inputs and cached under a key of the weights' identity.
    """
    forward, _ = compiled_forward(openvino_export_path(module, example, precision, source), precision)

    def torch_forward(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.from_numpy(forward({name: tensor.numpy() for name, tensor in inputs.items()}))

    return torch_forward
