"""What a chunk's forward passes are planned by and give back, shared by the numpy and the torch paths."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from rerank_plugins.batches import padded_arrays, plan_batches

if TYPE_CHECKING:
    from rerank_plugins.encoding import Encoder
    from rerank_plugins.loading import LoadedModel
    from rerank_plugins.units import Units

__all__ = [
    "BatchPolicy",
    "PendingScores",
    "UnitScores",
    "is_out_of_memory",
    "margins_of",
    "padded_inputs",
    "plan_runs",
    "run_halving",
    "width",
]

logger = logging.getLogger(__name__)
Scores = TypeVar("Scores")


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


def plan_runs(model: LoadedModel, ordered: Units, policy: BatchPolicy, packed: bool) -> list[tuple[int, int]]:
    """The (start, end) batches of length-sorted ``ordered`` units under ``policy``, as the runtime pads them."""
    return plan_batches(
        ordered.lengths,
        policy.batch_size,
        policy.max_tokens,
        None if packed else model.max_padding,
        packed,
        lambda length: width(model, length),
    )


def padded_inputs(model: LoadedModel, encoder: Encoder, units: Units, start: int, end: int) -> dict[str, np.ndarray]:
    """The named model inputs of units ``start..end-1`` (the longest first), padded to the runtime's width."""
    arrays = padded_arrays(units, start, end, width(model, int(units.lengths[start])), encoder.pad_id)
    named = {"input_ids": arrays.input_ids, "attention_mask": arrays.attention_mask}
    if encoder.uses_token_types:
        named["token_type_ids"] = arrays.token_type_ids
    return named


def margins_of(logits: np.ndarray, num_labels: int) -> np.ndarray:
    """fp32 relevance logits: log-odds of the positive class for two-label models, else the one logit."""
    values = np.asarray(logits, dtype=np.float32)
    margins: np.ndarray = values[:, 1] - values[:, 0] if num_labels == 2 else values[:, 0]
    return margins


def is_out_of_memory(error: BaseException) -> bool:
    """A ``MemoryError``, or a runtime's error that says it ran out of memory (torch's ``OutOfMemoryError`` does)."""
    return isinstance(error, MemoryError) or "out of memory" in str(error).lower()


def run_halving(
    run: Callable[[int, int], Scores],
    start: int,
    end: int,
    lengths: np.ndarray,
    device: str,
    on_out_of_memory: Callable[[], None] | None = None,
) -> list[Scores]:
    """``run(start, end)`` over units ``start..end-1``, halving the batch on out-of-memory until one unit alone
    does not fit (then a ``MemoryError`` says so); ``on_out_of_memory`` frees what it can before a retry."""
    try:
        return [run(start, end)]
    except (RuntimeError, MemoryError) as error:
        if not is_out_of_memory(error):
            raise
        if on_out_of_memory is not None:
            on_out_of_memory()
        if end - start == 1:
            raise MemoryError(
                f"out of memory scoring a single pair of {int(lengths[start])} tokens on {device}; "
                "lower max_length or use another device"
            ) from error
        half = (end - start) // 2
        logger.warning(
            "out of memory on a batch of %d; retrying as two of %d and %d", end - start, half, end - start - half
        )
        return run_halving(run, start, start + half, lengths, device, on_out_of_memory) + run_halving(
            run, start + half, end, lengths, device, on_out_of_memory
        )
