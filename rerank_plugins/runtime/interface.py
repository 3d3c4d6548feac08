"""``ModelRuntime``: what a runtime does for a loaded network, and the checks of where and how it may run.

Each runtime (torch, OpenVINO, ONNX Runtime) is one subclass in its own module, listed by name in
``runtime.table``; the loader, the batch planner and ``resolve_runtime`` only talk to this interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from rerank_plugins.runtime.forward import Forward, PackedForward, ScoreTokens

__all__ = ["ModelRuntime", "device_type"]


def device_type(device: str) -> str:
    """The type of a resolved torch device string: ``"cuda"`` for ``"cuda:1"`` (no torch needed)."""
    return device.split(":", 1)[0]


def _choices(values: tuple[str, ...]) -> str:
    """``'a', 'b' or 'c'``: the allowed values as an error message lists them."""
    quoted = [repr(value) for value in values]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


class ModelRuntime(ABC):
    """One way of running a cross-encoder: its name, where it runs, and how it sets a loaded network up."""

    name: ClassVar[str]
    """The ``runtime=`` value that picks it (also the score cache's and calibration's record of it)."""
    label: ClassVar[str]
    """Its name in messages, such as ``OpenVINO``."""
    extra: ClassVar[str | None] = None
    """The ``rerank-plugins[...]`` extra that installs it; ``None``: always installed."""
    device_types: ClassVar[tuple[str, ...] | None] = None
    """The torch device types it runs on (``("cpu",)``); ``None``: any."""
    precisions: ClassVar[tuple[str, ...]]
    """The precisions it runs in."""

    def available(self) -> bool:
        """True when its libraries are installed."""
        return True

    def runs_on(self, device: str) -> bool:
        """True when it runs on ``device`` (a resolved torch device string)."""
        return self.device_types is None or device_type(device) in self.device_types

    def precision_refusal(self, precision: str) -> str:
        """The error for a ``precision`` outside ``precisions``."""
        return f"runtime={self.name!r} supports precision {_choices(self.precisions)}, not {precision!r}"

    def check(self, device: str, precision: str) -> None:
        """Refuse a device it does not run on, a missing install, or a precision it does not run in."""
        if not self.runs_on(device):
            where = (
                "the CPU" if self.device_types == ("cpu",) else f"devices of type {_choices(self.device_types or ())}"
            )
            raise ValueError(f"runtime={self.name!r} runs on {where} only, not on device {device!r}")
        if not self.available():
            raise ImportError(f'runtime="{self.name}" needs {self.label}: pip install "rerank-plugins[{self.extra}]"')
        if precision not in self.precisions:
            raise ValueError(self.precision_refusal(precision))

    @abstractmethod
    def prepare(
        self, network: Any, tokenizer: Any, score_tokens: ScoreTokens | None, precision: str, source: dict[str, Any]
    ) -> Forward:
        """Set the loaded ``network`` up to run in ``precision`` and return its forward pass.

        ``source`` names the weights (name, revision, hub commit): what an export's cache key starts from.
        """

    embeds: ClassVar[bool] = True
    """True when the bi-encoder (``retrieval.Embedder``) can run on it too."""
    host_arrays: ClassVar[bool] = False
    """True when its forward pass takes and returns numpy arrays on the host (no torch in the loop)."""
    graph_file: ClassVar[str | None] = None
    """The file an exported graph of this runtime is saved as; ``None`` where it runs no exported graph."""

    def load_graph(self, path: Path, precision: str) -> tuple[Forward, list[str]]:
        """The forward pass (numpy arrays) of the exported graph at ``path``, and the inputs it takes."""
        raise ValueError(f"runtime={self.name!r} does not run exported graphs: use runtime='onnx' or 'openvino'")

    def export_graph(
        self, network: Any, tokenizer: Any, score_tokens: ScoreTokens | None, precision: str, source: dict[str, Any]
    ) -> Path:
        """Export the loaded torch ``network`` in ``precision`` (cached on disk) and return the graph's path."""
        raise ValueError(f"runtime={self.name!r} exports nothing: use runtime='onnx' or 'openvino'")

    def width(self, length: int, max_positions: int) -> int:
        """Padded length of a batch whose longest input has ``length`` tokens."""
        return length

    def max_padding(self, config: Any) -> int | None:
        """Most pad tokens a row of a batch may carry; ``None`` for no limit."""
        return None

    def packed(self, network: Any, score_tokens: ScoreTokens | None) -> PackedForward | None:
        """The unpadded forward pass over packed batches (after ``prepare``), where it has one; else ``None``."""
        return None
