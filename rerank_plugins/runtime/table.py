"""The runtimes by name, and the order ``runtime="auto"`` tries them in."""

from __future__ import annotations

from rerank_plugins.runtime.interface import ModelRuntime
from rerank_plugins.runtime.onnx import OnnxRuntime
from rerank_plugins.runtime.openvino import OpenVINORuntime
from rerank_plugins.runtime.torch_runtime import TorchRuntime

__all__ = ["AUTO_ORDER", "RUNTIME_TABLE"]

RUNTIME_TABLE: dict[str, ModelRuntime] = {
    runtime.name: runtime for runtime in (TorchRuntime(), OpenVINORuntime(), OnnxRuntime())
}
"""Every runtime ``runtime=`` may name; each is stateless, so one instance serves every model."""

AUTO_ORDER = ("openvino", "torch")
"""``"auto"`` takes the first of these that runs on the device and is installed."""

