"""What a chunk's forward passes are planned by and give back, shared by the numpy and the torch paths."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from rerank_plugins.loading import LoadedModel

__all__ = ["BatchPolicy", "PendingScores", "UnitScores", "margins_of", "width"]


@dataclass(frozen=True)
class BatchPolicy:
    """How units are grouped: at most ``batch_size`` a batch and ``max_tokens`` tokens as the model runs
    them (``None``: no token limit); ``packed`` runs batches unpadded where the model has that pass."""

    batch_size: int
    max_tokens: int | None = None
    packed: bool = False


@dataclass(frozen=True)
class UnitScores:
    """fp32 margins of model inputs in input order, and the token counts spent on them."""

    margins: np.ndarray
    tokens: int
    padded_tokens: int


class PendingScores:
    """A chunk's scores, ready or on their way back from a device; ``result`` waits for them."""

    def __init__(self, scores: UnitScores) -> None:
        self._scores = scores

    def result(self) -> UnitScores:
        return self._scores


def width(model: LoadedModel, length: int) -> int:
    """Padded length of a batch whose longest input has ``length`` tokens (the runtime may round it up)."""
    return model.engine.width(length, model.max_positions)


def margins_of(logits: np.ndarray, num_labels: int) -> np.ndarray:
    """fp32 relevance logits: log-odds of the positive class for two-label models, else the one logit."""
    values = np.asarray(logits, dtype=np.float32)
    margins: np.ndarray = values[:, 1] - values[:, 0] if num_labels == 2 else values[:, 0]
    return margins
