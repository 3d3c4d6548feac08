"""The two shapes of a forward pass every runtime returns, and what names a causal LM's scoring tokens.

Torch-free: the torch runtime's own forward pass lives in ``runtime.torch_forward``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Forward", "PackedForward", "ScoreTokens"]

Forward = Callable[[dict[str, Any]], Any]
"""Model inputs to relevance logits (fp32, one row per input): torch tensors in and out, or numpy arrays for
runtimes whose ``host_arrays`` is true (ONNX Runtime, OpenVINO)."""

PackedForward = Callable[[Any], Any]
"""A packed batch (``PackedInputs`` on the model's device) to relevance logits, one row per sequence."""

ScoreTokens = tuple[int, int | None]
"""A causal-LM reranker's (true, false) token ids, such as ("yes", "no"); false may be absent."""
