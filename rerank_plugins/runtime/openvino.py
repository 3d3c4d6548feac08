"""OpenVINO on the CPU: runs an IR graph on numpy arrays, with no torch in the loop.

OpenVINO's CPU kernels fuse attention, layer norm and activations and run bf16 and int8 matmuls natively
where the CPU has them. ``int8`` keeps int8 weights (NNCF) and quantises activations on the fly in small
groups, so it needs no calibration data. A torch checkpoint is converted once and cached
(``runtime.openvino_export``, which needs torch); an artefact of ``rerank-plugins export`` or a hub model's
``openvino/openvino_model.xml`` is compiled as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rerank_plugins.runtime.forward import Forward
from rerank_plugins.runtime.graph_runtime import GraphRuntime
from rerank_plugins.runtime.openvino_graph import (
    GRAPH_FILE,
    SHAPE_STEP,
    compiled_forward,
    openvino_available,
)

__all__ = ["GRAPH_FILE", "SHAPE_STEP", "OpenVINORuntime", "compiled_forward", "openvino_available"]


class OpenVINORuntime(GraphRuntime):
    """OpenVINO on the CPU in fp32, bf16 or int8; batches padded to a multiple of ``SHAPE_STEP`` tokens."""

    name = "openvino"
    label = "OpenVINO"
    extra = "openvino"
    precisions = ("fp32", "bf16", "int8")
    graph_file = GRAPH_FILE

    def available(self) -> bool:
        return openvino_available()

    def load_graph(self, path: Path, precision: str) -> tuple[Forward, list[str]]:
        return compiled_forward(path, precision)

    def graph_path(self, module: Any, example: dict[str, Any], precision: str, source: dict[str, Any]) -> Path:
        from rerank_plugins.runtime.openvino_export import openvino_export_path

        return openvino_export_path(module, example, precision, source)

    def width(self, length: int, max_positions: int) -> int:
        """``length`` rounded up to the next ``SHAPE_STEP``, but not past the model's positions."""
        return min(-(-length // SHAPE_STEP) * SHAPE_STEP, max(length, max_positions))

    def max_padding(self, config: Any) -> int | None:
        """OpenVINO's attention gives NaN for a query that sees no key. A pad token further than half a
        local-attention window (ModernBERT) from every real token sees none, and its NaN values reach the
        real tokens through the next layer, so batches of such models keep padding within half a window."""
        window = config.get("local_attention") if isinstance(config, dict) else getattr(config, "local_attention", None)
        if not isinstance(window, int) or window <= 0:
            return None
        return max(0, window // 2 - SHAPE_STEP)
