"""Cutting length-sorted units into batches, by count and by token budget, and laying each out as arrays.

Pure numpy, so the rules (budgets, padding limits, order) are the same and testable on any device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rerank_plugins.units import Units, ragged_arange

__all__ = ["PackedArrays", "PaddedArrays", "packed_arrays", "padded_arrays", "plan_batches"]


def plan_batches(
    lengths: np.ndarray,
    batch_size: int,
    max_tokens: int | None = None,
    max_padding: int | None = None,
    packed: bool = False,
    width: Callable[[int], int] = int,
) -> list[tuple[int, int]]:
    """Consecutive ``[start, end)`` runs of ``lengths`` (sorted longest first) that make one batch each.

    A batch holds at most ``batch_size`` units and, when ``max_tokens`` is set, at most that many tokens
    as the model runs them: every row padded to ``width(longest)`` or, ``packed``, only real tokens.
    A unit further than ``max_padding`` tokens below the batch's longest starts a new batch. A unit over
    the token budget on its own still gets a batch of one.
    """
    runs: list[tuple[int, int]] = []
    start = 0
    padded_width = 0
    tokens = 0
    for position, length in enumerate(lengths.tolist()):
        count = position - start
        if count:
            cost = tokens + length if packed else (count + 1) * padded_width
            if (
                count == batch_size
                or max_tokens is not None
                and cost > max_tokens
                or max_padding is not None
                and int(lengths[start]) - length > max_padding
            ):
                runs.append((start, position))
                start, count = position, 0
        if not count:
            padded_width, tokens = width(length), 0
        tokens += length
    if start < len(lengths):
        runs.append((start, len(lengths)))
    return runs


@dataclass(frozen=True)
class PaddedArrays:
    """One batch as right-padded rows."""

    input_ids: np.ndarray
    token_type_ids: np.ndarray
    attention_mask: np.ndarray


def _token_span(units: Units, start: int, end: int) -> tuple[int, int]:
    """Where units ``start..end-1`` lie in the flat token arrays."""
    first = int(units.lengths[:start].sum())
    return first, first + int(units.lengths[start:end].sum())


def padded_arrays(units: Units, start: int, end: int, width: int, pad_id: int) -> PaddedArrays:
    """Units ``start..end-1`` as ``(rows, width)`` arrays, filled in one step from the flat tokens."""
    lengths = units.lengths[start:end]
    first, last = _token_span(units, start, end)
    mask = np.arange(width) < lengths[:, None]
    input_ids = np.full((end - start, width), pad_id, dtype=np.int64)
    token_type_ids = np.zeros((end - start, width), dtype=np.int64)
    input_ids[mask] = units.ids[first:last]
    token_type_ids[mask] = units.types[first:last]
    return PaddedArrays(input_ids, token_type_ids, mask.astype(np.int64))


@dataclass(frozen=True)
class PackedArrays:
    """One batch as its real tokens back to back: sequence ``i`` is rows ``cu_seqlens[i]:cu_seqlens[i+1]``."""

    input_ids: np.ndarray
    token_type_ids: np.ndarray
    position_ids: np.ndarray
    cu_seqlens: np.ndarray
    max_seqlen: int


def packed_arrays(units: Units, start: int, end: int) -> PackedArrays:
    """Units ``start..end-1`` packed without padding, with each token's position in its own sequence."""
    lengths = units.lengths[start:end]
    first, last = _token_span(units, start, end)
    cu_seqlens = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=cu_seqlens[1:])
    return PackedArrays(
        units.ids[first:last],
        units.types[first:last],
        ragged_arange(lengths),
        cu_seqlens,
        int(lengths.max()) if len(lengths) else 0,
    )
