"""From the model's per-input margins to each pair's raw score and 0-1 relevance, in fp32."""

from __future__ import annotations

import numpy as np

from rerank_plugins.artefact import sigmoid
from rerank_plugins.calibration.calibrator import Calibration
from rerank_plugins.loading import LoadedModel

__all__ = ["aggregate_windows", "scores_and_relevance"]


def aggregate_windows(
    unit_margins: np.ndarray, owners: list[int] | np.ndarray, pairs: int, how: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One margin per pair from its inputs' margins (``"max"`` or ``"mean"``), its input count, and its best
    input (the highest margin, the first on a tie, whichever the aggregation): where the evidence is."""
    owner_index = np.asarray(owners)
    windows = np.bincount(owner_index, minlength=pairs)
    order = np.lexsort((-np.asarray(unit_margins, dtype=np.float64), owner_index))  # by pair, best first
    firsts = np.cumsum(windows) - windows
    best = order[firsts[windows > 0]]
    best_units = np.zeros(pairs, dtype=np.int64)
    best_units[windows > 0] = best
    margins: np.ndarray
    if how == "max":
        margins = np.full(pairs, -np.inf, dtype=np.float32)
        np.maximum.at(margins, owner_index, unit_margins)
    else:
        margins = np.bincount(owner_index, weights=unit_margins, minlength=pairs) / windows
    return margins.astype(np.float32), windows, best_units


def scores_and_relevance(
    margins: np.ndarray, model: LoadedModel, calibration: Calibration | None = None
) -> tuple[list[float], list[float]]:
    """Raw scores as ``CrossEncoder.predict`` gives them (log-odds for two-label models); relevance is the
    calibrated probability when a calibration is given, else the sigmoid of the margin."""
    logits = np.asarray(margins, dtype=np.float32)
    scores = logits if model.num_labels == 2 else np.asarray(model.activation(logits), dtype=np.float32)
    relevance = sigmoid(logits) if calibration is None else np.asarray(calibration.apply(margins))
    return scores.tolist(), relevance.tolist()

