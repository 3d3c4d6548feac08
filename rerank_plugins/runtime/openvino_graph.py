"""Compiling an OpenVINO IR graph for the CPU as a forward pass of numpy arrays (torch-free)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rerank_plugins._optional import installed, require
from rerank_plugins.cpu import cpu_flags
from rerank_plugins.runtime.forward import Forward

__all__ = ["DYNAMIC_QUANTIZATION_GROUP", "GRAPH_FILE", "SHAPE_STEP", "compiled_forward", "openvino_available"]

GRAPH_FILE = "model.xml"
"""The file name of an IR graph in the cache and in an artefact (its weights beside it, ``model.bin``)."""
SHAPE_STEP = 16
"""OpenVINO batches are padded to a multiple of this many tokens: it keeps one compiled kernel set per
length bucket, so memory stays flat over many batch shapes (a few % more padding)."""
DYNAMIC_QUANTIZATION_GROUP = 64
"""Activation values per int8 scale in ``int8``: smaller is closer to fp32, larger is faster."""


def openvino_available() -> bool:
    """True when the ``openvino`` extra is installed."""
    return installed("openvino")


def _native_bf16() -> bool:
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def _input_name(names: set[str]) -> str:
    """An input port's model-input name (a port also carries the traced tensor's number, such as ``'275'``)."""
    known = sorted(names & {"input_ids", "attention_mask", "token_type_ids"})
    return known[0] if known else sorted(names)[0]


def compiled_forward(path: Path, precision: str) -> tuple[Forward, list[str]]:
    """The IR graph at ``path`` compiled for the CPU in ``precision``, as a forward pass of numpy arrays, and the
    names of the inputs it takes.

    int8 weights run their activations in bf16 where the CPU has native bf16 (a free speed-up there)."""
    ov = require("openvino", "openvino")
    quantise = precision == "int8"
    hint = "bf16" if precision == "bf16" or (quantise and _native_bf16()) else "f32"
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"}
    if quantise:
        config["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = str(DYNAMIC_QUANTIZATION_GROUP)
    compiled = ov.Core().compile_model(path, "CPU", config)
    names = [_input_name(port.get_names()) for port in compiled.inputs]

    def forward(inputs: dict[str, Any]) -> Any:
        request = compiled.create_infer_request()  # one per call: requests are not shared between threads
        result = request.infer({name: inputs[name] for name in names})
        return result[compiled.output(0)].copy()

    return forward, names
