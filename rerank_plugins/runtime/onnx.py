"""ONNX Runtime on the CPU: runs an exported graph on numpy arrays, with no torch in the loop.

A torch checkpoint is exported once and cached (``runtime.onnx_export``, which needs torch); an artefact of
``rerank-plugins export`` or a hub model's ``onnx/model.onnx`` is run as it is, so this path needs neither.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rerank_plugins._optional import installed, require
from rerank_plugins.runtime.forward import Forward, ScoreTokens
from rerank_plugins.runtime.interface import ModelRuntime

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


class OnnxRuntime(ModelRuntime):
    """ONNX Runtime on the CPU in fp32, or int8 by dynamic quantisation; chosen only by ``runtime='onnx'``."""

    name = "onnx"
    label = "ONNX Runtime"
    extra = "onnx"
    device_types = ("cpu",)
    precisions = ("fp32", "int8")
    host_arrays = True
    graph_file = MODEL_FILE
    embeds = False

    def available(self) -> bool:
        return onnx_available()

    def precision_refusal(self, precision: str) -> str:
        return f"{super().precision_refusal(precision)} (bf16 and fp16 run on runtime='torch' or 'openvino')"

    def load_graph(self, path: Path, precision: str) -> tuple[Forward, list[str]]:
        return onnx_session_forward(path)

    def export_graph(
        self, network: Any, tokenizer: Any, score_tokens: ScoreTokens | None, precision: str, source: dict[str, Any]
    ) -> Path:
        from rerank_plugins.runtime.exporting import example_inputs, graph_inputs
        from rerank_plugins.runtime.onnx_export import onnx_export_path
        from rerank_plugins.runtime.scoring import scoring_module

        module = scoring_module(network, score_tokens)
        example = example_inputs(tokenizer, graph_inputs(network, tokenizer, score_tokens))
        return onnx_export_path(module, example, precision, source)

    def prepare(
        self, network: Any, tokenizer: Any, score_tokens: ScoreTokens | None, precision: str, source: dict[str, Any]
    ) -> Forward:
        path = self.export_graph(network, tokenizer, score_tokens, precision, source)
        forward, _ = self.load_graph(path, precision)
        network.to("meta")  # ONNX Runtime holds its own weights; keep the module tree (config, shapes), free the memory
        return forward
