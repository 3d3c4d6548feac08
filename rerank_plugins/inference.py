"""Forward passes over a chunk of units: length-sorted batches of the model's inputs, scored in one go.

Runtimes that take numpy arrays (ONNX Runtime, OpenVINO) are run here with no torch in the loop; torch
models go through ``torch_inference``, which keeps the device busy while the host plans the next chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from rerank_plugins.encoding import Encoder
from rerank_plugins.loading import LoadedModel
from rerank_plugins.unit_scores import (
    BatchPolicy,
    PendingScores,
    UnitScores,
    margins_of,
    padded_inputs,
    plan_runs,
    run_halving,
    width,
)
from rerank_plugins.units import Units

__all__ = ["BatchPolicy", "PendingScores", "UnitScores", "launch", "width"]


def _run_batch(model: LoadedModel, encoder: Encoder, units: Units, start: int, end: int) -> np.ndarray:
    """Margins of units ``start..end-1`` from the numpy forward pass."""
    return margins_of(model.forward(padded_inputs(model, encoder, units, start, end)), model.num_labels)


def _launch_host(
    model: LoadedModel, encoder: Encoder, units: Units, policy: BatchPolicy, on_batch: Callable[[int], object] | None
) -> PendingScores:
    """Score every batch of ``units`` with a numpy forward pass, on the calling thread."""
    order, ordered = units.sorted_by_length()
    margins = np.empty(len(order), dtype=np.float32)
    padded_tokens = 0
    for start, end in plan_runs(model, ordered, policy, packed=False):
        run = partial(_run_batch, model, encoder, ordered)
        margins[order[start:end]] = np.concatenate(run_halving(run, start, end, ordered.lengths, model.device))
        padded_tokens += (end - start) * width(model, int(ordered.lengths[start]))
        if on_batch is not None:
            on_batch(end - start)
    return PendingScores(UnitScores(margins, units.tokens, padded_tokens))


def launch(
    model: LoadedModel,
    encoder: Encoder,
    units: Units,
    policy: BatchPolicy,
    on_batch: Callable[[int], object] | None = None,
) -> PendingScores:
    """Score (or, on a device, queue the scoring of) every batch of ``units``; ``result`` gives the margins.

    ``on_batch`` is called with the number of units of each batch (a progress bar's ``update``).
    """
    if model.engine.host_arrays:
        return _launch_host(model, encoder, units, policy, on_batch)
    from rerank_plugins.torch_inference import launch_torch

    return launch_torch(model, encoder, units, policy, on_batch)
