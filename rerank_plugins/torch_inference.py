"""Forward passes on torch: length-sorted batches, launched without waiting on the device.

Each batch is cut from the chunk's flat token arrays in one step (``batches``), copied to the device
from pinned memory without blocking, and scored there; the chunk's scores stay on the device and come
back in one copy, which ``PendingScores.result`` waits for. So while the device runs one chunk, the
host is free to tokenise and plan the next.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import torch

from rerank_plugins.batches import packed_arrays
from rerank_plugins.encoding import Encoder
from rerank_plugins.loading import LoadedModel
from rerank_plugins.runtime.packed import PackedInputs
from rerank_plugins.unit_scores import (
    BatchPolicy,
    PendingScores,
    UnitScores,
    padded_inputs,
    plan_runs,
    run_halving,
    width,
)
from rerank_plugins.units import Units

__all__ = ["launch_torch"]


class _DeviceScores(PendingScores):
    """A chunk's scores on their way back from the device; ``result`` waits for them."""

    def __init__(
        self, host: torch.Tensor, ready: torch.cuda.Event | None, order: np.ndarray, tokens: int, padded: int
    ) -> None:
        self._host, self._ready, self._order = host, ready, order
        self._tokens, self._padded = tokens, padded

    def result(self) -> UnitScores:
        if self._ready is not None:
            self._ready.synchronize()
        margins = np.empty(len(self._order), dtype=np.float32)
        margins[self._order] = self._host.numpy()
        return UnitScores(margins, self._tokens, self._padded)


def _on_device(model: LoadedModel, array: np.ndarray) -> torch.Tensor:
    """A host array on the model's device: through pinned memory and a non-blocking copy on CUDA."""
    tensor = torch.from_numpy(array)
    if model.device.startswith("cuda"):
        return tensor.pin_memory().to(model.device, non_blocking=True)
    return tensor.to(model.device)


def _margin(model: LoadedModel, logits: torch.Tensor) -> torch.Tensor:
    """fp32 relevance logits (log-odds of the positive class for two-label models), left on the device."""
    logits = logits.float()
    return logits[:, 1] - logits[:, 0] if model.num_labels == 2 else logits[:, 0]


def _run_batch(model: LoadedModel, encoder: Encoder, units: Units, start: int, end: int, packed: bool) -> torch.Tensor:
    if packed and model.packed_forward is not None:
        arrays = packed_arrays(units, start, end)
        inputs = PackedInputs(
            input_ids=_on_device(model, arrays.input_ids),
            position_ids=_on_device(model, arrays.position_ids),
            cu_seqlens=_on_device(model, arrays.cu_seqlens),
            max_seqlen=arrays.max_seqlen,
            token_type_ids=_on_device(model, arrays.token_type_ids) if encoder.uses_token_types else None,
        )
        return _margin(model, model.packed_forward(inputs))
    named = padded_inputs(model, encoder, units, start, end)
    return _margin(model, model.forward({name: _on_device(model, array) for name, array in named.items()}))


def _free_cached(model: LoadedModel) -> None:
    """Give the CUDA allocator's cached blocks back before a batch is retried in halves."""
    if model.device.startswith("cuda"):
        torch.cuda.empty_cache()


@torch.inference_mode()
def launch_torch(
    model: LoadedModel,
    encoder: Encoder,
    units: Units,
    policy: BatchPolicy,
    on_batch: Callable[[int], object] | None = None,
) -> PendingScores:
    """Queue every batch of ``units`` on the device and the copy of their scores back, without waiting.

    ``on_batch`` is called with the number of units of each queued batch (a progress bar's ``update``).
    """
    order, ordered = units.sorted_by_length()
    packed = policy.packed and model.packed_forward is not None
    runs = plan_runs(model, ordered, policy, packed)
    outputs: list[torch.Tensor] = []
    padded_tokens = 0
    for start, end in runs:
        run = partial(_run_batch, model, encoder, ordered, packed=packed)
        outputs.extend(run_halving(run, start, end, ordered.lengths, model.device, partial(_free_cached, model)))
        lengths = ordered.lengths[start:end]
        padded_tokens += int(lengths.sum()) if packed else (end - start) * width(model, int(lengths[0]))
        if on_batch is not None:
            on_batch(end - start)
    margins = torch.cat(outputs) if outputs else torch.empty(0)
    ready = None
    if margins.is_cuda:
        host = torch.empty(margins.shape, dtype=margins.dtype, pin_memory=True)
        host.copy_(margins, non_blocking=True)
        ready = torch.cuda.Event()  # type: ignore[no-untyped-call]
        ready.record()
    else:
        host = margins.cpu()
    return _DeviceScores(host, ready, order, units.tokens, padded_tokens)
