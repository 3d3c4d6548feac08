"""Forward passes: length-sorted batches padded only to their own longest pair, order restored after."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from rerank_plugins.encoding import Encoder, Unit
from rerank_plugins.loading import LoadedModel
from rerank_plugins.runtime.openvino import SHAPE_STEP

__all__ = ["UnitScores", "score_units"]

logger = logging.getLogger(__name__)


def _is_out_of_memory(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower()


def _width(model: LoadedModel, batch: list[Unit]) -> int:
    """Padded length of a batch: its longest input, rounded up to a bucket for OpenVINO."""
    width = max(len(ids) for ids, _ in batch)
    if model.runtime == "openvino":
        width = min(-(-width // SHAPE_STEP) * SHAPE_STEP, max(width, model.max_positions))
    return width


def _margins(model: LoadedModel, encoder: Encoder, batch: list[Unit]) -> torch.Tensor:
    """fp32 relevance logits of one batch (log-odds of the positive class for two-label models)."""
    width = _width(model, batch)
    input_ids = torch.full((len(batch), width), encoder.pad_id, dtype=torch.long)
    token_types = torch.zeros((len(batch), width), dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    for row, (ids, types) in enumerate(batch):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        token_types[row, : len(types)] = torch.tensor(types, dtype=torch.long)
        attention[row, : len(ids)] = 1
    inputs = {"input_ids": input_ids, "attention_mask": attention}
    if encoder.uses_token_types:
        inputs["token_type_ids"] = token_types
    inputs = {name: tensor.to(model.device) for name, tensor in inputs.items()}
    logits = model.forward(inputs).float()
    if model.num_labels == 2:
        return (logits[:, 1] - logits[:, 0]).cpu()
    return logits[:, 0].cpu()


def _score_batch(model: LoadedModel, encoder: Encoder, batch: list[Unit]) -> torch.Tensor:
    """Score a batch, halving it on out-of-memory until one pair alone does not fit."""
    try:
        return _margins(model, encoder, batch)
    except (RuntimeError, torch.OutOfMemoryError) as error:
        if not _is_out_of_memory(error):
            raise
        if model.device.startswith("cuda"):
            torch.cuda.empty_cache()
        if len(batch) == 1:
            raise MemoryError(
                f"out of memory scoring a single pair of {len(batch[0][0])} tokens on {model.device}; "
                "lower max_length or use another device"
            ) from error
        half = len(batch) // 2
        logger.warning(
            "out of memory on a batch of %d; retrying as two of %d and %d", len(batch), half, len(batch) - half
        )
        return torch.cat([_score_batch(model, encoder, batch[:half]), _score_batch(model, encoder, batch[half:])])


def _batches(order: list[int], units: list[Unit], batch_size: int, max_padding: int | None) -> Iterator[list[int]]:
    """Consecutive runs of the length-sorted ``order``: ``batch_size`` long, or shorter where a unit
    would be padded by more than ``max_padding`` tokens."""
    batch: list[int] = []
    for position in order:
        full = len(batch) == batch_size
        if batch and (
            full or max_padding is not None and len(units[batch[0]][0]) - len(units[position][0]) > max_padding
        ):
            yield batch
            batch = []
        batch.append(position)
    if batch:
        yield batch


@dataclass(frozen=True)
class UnitScores:
    """fp32 margins of model inputs in input order, and the token counts spent on them."""

    margins: np.ndarray
    tokens: int
    padded_tokens: int


@torch.inference_mode()
def score_units(
    model: LoadedModel,
    encoder: Encoder,
    units: list[Unit],
    batch_size: int,
    on_batch: Callable[[int], object] | None = None,
) -> UnitScores:
    """Score every unit; batches are formed from length-sorted units, so padding stays small.

    ``on_batch`` is called with the number of units of each finished batch (a progress bar's ``update``).
    """
    order = sorted(range(len(units)), key=lambda position: -len(units[position][0]))
    margins = np.empty(len(units), dtype=np.float32)
    padded = 0
    for positions in _batches(order, units, batch_size, model.max_padding):
        batch = [units[position] for position in positions]
        margins[positions] = _score_batch(model, encoder, batch).numpy()
        padded += len(batch) * _width(model, batch)
        if on_batch is not None:
            on_batch(len(positions))
    return UnitScores(margins, sum(len(ids) for ids, _ in units), padded)
