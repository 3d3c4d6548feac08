"""ONNX Runtime on the CPU: runs an exported graph on numpy arrays, with no torch in the loop.

A torch checkpoint is exported once and cached (``runtime.onnx_export``, which needs torch); an artefact of
``rerank-plugins export`` or a hub model's ``onnx/model.onnx`` is run as it is, so this path needs neither.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rerank_plugins._optional import installed, require
from rerank_plugins.runtime.forward import Forward
from rerank_plugins.runtime.graph_runtime import GraphRuntime

__all__ = ["MODEL_FILE", "OnnxRuntime", "onnx_available", "onnx_session_forward"]

MODEL_FILE = "model.onnx"
"""The file name of an export, in the cache and in an artefact."""


def onnx_available() -> bool:
    """True when the ``onnx`` extra (ONNX Runtime) is installed."""
    return installed("onnxruntime")


def onnx_session_forward(path: Path) -> tuple[Forward, list[str]]:
    """An ONNX Runtime session over the graph at ``path`` as a forward pass of numpy arrays (thread-safe), and
    the names of the inputs it takes."""
    ort = require("onnxruntime", "onnx")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: its warnings about unused initialisers are noise here
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [graph_input.name for graph_input in session.get_inputs()]

    def forward(inputs: dict[str, Any]) -> Any:
        return session.run(None, {name: inputs[name] for name in names})[0]

    return forward, names


class OnnxRuntime(GraphRuntime):
    """ONNX Runtime on the CPU in fp32, or int8 by dynamic quantisation; chosen only by ``runtime='onnx'``."""

    name = "onnx"
    label = "ONNX Runtime"
    extra = "onnx"
    precisions = ("fp32", "int8")
    graph_file = MODEL_FILE
    embeds = False

    def available(self) -> bool:
        return onnx_available()

    def precision_refusal(self, precision: str) -> str:
        return f"{super().precision_refusal(precision)} (bf16 and fp16 run on runtime='torch' or 'openvino')"

    def load_graph(self, path: Path, precision: str) -> tuple[Forward, list[str]]:
        return onnx_session_forward(path)

    def graph_path(self, module: Any, example: dict[str, Any], precision: str, source: dict[str, Any]) -> Path:
        from rerank_plugins.runtime.onnx_export import onnx_export_path

        return onnx_export_path(module, example, precision, source)
