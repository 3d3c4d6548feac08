"""Blending cross-encoder scores with first-stage retrieval scores (per-query min-max, then a weighted sum).

A cross-encoder and a bi-encoder make different mistakes; on SciFact a blend with weight 0.75 on the
cross-encoder beat either alone. Min-max per query makes the two score scales comparable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from rerank_plugins.validation import is_number

__all__ = ["check_fusion", "fuse", "minmax"]


def minmax(values: Sequence[float]) -> np.ndarray:
    """Scale to [0, 1] within this list; a constant list maps to zeros."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        return array
    low, high = float(array.min()), float(array.max())
    return (array - low) / (high - low) if high > low else np.zeros_like(array)


def fuse(rerank_scores: Sequence[float], retrieval_scores: Sequence[float], weight: float) -> list[float]:
    """``weight * minmax(rerank) + (1 - weight) * minmax(retrieval)``, as Python floats."""
    fused = weight * minmax(rerank_scores) + (1.0 - weight) * minmax(retrieval_scores)
    return [float(value) for value in fused]


def check_fusion(retrieval_scores: Any, weight: Any, count: int, name: str = "retrieval_scores") -> list[float] | None:
    """Validate a fusion request for ``count`` documents; ``None`` when fusion is off."""
    if weight is None:
        if retrieval_scores is not None:
            raise ValueError(f"{name} were given without fusion_weight; pass fusion_weight in [0, 1] to blend them")
        return None
    if not is_number(weight) or not 0.0 <= float(weight) <= 1.0:
        raise ValueError(f"fusion_weight must be a number in [0, 1], got {weight!r}")
    if retrieval_scores is None:
        raise ValueError(f"fusion_weight needs {name}: one first-stage score per document")
    if isinstance(retrieval_scores, (str, bytes)) or not isinstance(retrieval_scores, Sequence):
        raise TypeError(f"{name} must be a list of numbers, got {type(retrieval_scores).__name__}")
    if len(retrieval_scores) != count:
        raise ValueError(f"got {count} documents but {len(retrieval_scores)} {name}")
    scores = []
    for position, value in enumerate(retrieval_scores):
        if not (is_number(value) or isinstance(value, (np.floating, np.integer))):
            raise TypeError(f"{name}[{position}] must be a number, got {type(value).__name__}")
        if not math.isfinite(float(value)):
            raise ValueError(f"{name}[{position}] must be finite, got {value!r}")
        scores.append(float(value))
    return scores
