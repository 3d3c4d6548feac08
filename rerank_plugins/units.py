"""Model inputs as flat token arrays: a chunk's units built, sorted and sliced without a per-row Python loop.

A unit is one model input (a pair, or one window of a long document). ``Units`` holds all of a
chunk's units back to back, so batches are cut from one array instead of being built row by row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Protocol

import numpy as np

__all__ = ["ChunkPlan", "KnownSpans", "Unit", "UnitSpans", "Units", "ragged_arange", "ragged_ranges"]

Unit = tuple[list[int], list[int]]
"""One model input as lists: token ids and token type ids."""


def ragged_arange(lengths: np.ndarray) -> np.ndarray:
    """``0..n-1`` for each length ``n``, concatenated: ``[2, 3] -> [0, 1, 0, 1, 2]``."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    firsts = np.cumsum(lengths) - lengths
    result: np.ndarray = np.arange(total, dtype=np.int64) - np.repeat(firsts, lengths)
    return result


def ragged_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The indices ``start..start+n-1`` of each (start, n), concatenated."""
    lengths = np.asarray(lengths, dtype=np.int64)
    result: np.ndarray = np.repeat(np.asarray(starts, dtype=np.int64), lengths) + ragged_arange(lengths)
    return result


@dataclass(frozen=True)
class Units:
    """Units back to back: unit ``i`` is ``ids[starts[i] : starts[i] + lengths[i]]`` (and its ``types``)."""

    ids: np.ndarray
    types: np.ndarray
    lengths: np.ndarray

    @property
    def starts(self) -> np.ndarray:
        starts: np.ndarray = np.cumsum(self.lengths) - self.lengths
        return starts

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def tokens(self) -> int:
        """Real tokens of all units."""
        return int(self.lengths.sum())

    @classmethod
    def from_units(cls, units: Sequence[Unit]) -> Units:
        """Flatten units given as lists (the causal-LM prompt encoder builds them so)."""
        lengths = np.fromiter((len(ids) for ids, _ in units), dtype=np.int64, count=len(units))
        total = int(lengths.sum())
        ids = np.fromiter(chain.from_iterable(ids for ids, _ in units), dtype=np.int64, count=total)
        types = np.fromiter(chain.from_iterable(types for _, types in units), dtype=np.int64, count=total)
        return cls(ids, types, lengths)

    def unit(self, index: int) -> Unit:
        """Unit ``index`` as lists (for tests and debugging)."""
        start, length = int(self.starts[index]), int(self.lengths[index])
        return self.ids[start : start + length].tolist(), self.types[start : start + length].tolist()

    def sorted_by_length(self) -> tuple[np.ndarray, Units]:
        """Longest first (ties in input order), and the units laid out in that order."""
        order = np.argsort(-self.lengths, kind="stable")
        gather = ragged_ranges(self.starts[order], self.lengths[order])
        return order, Units(self.ids[gather], self.types[gather], self.lengths[order])


class UnitSpans(Protocol):
    """Each unit's document piece as characters of its document, worked out only for the units asked about
    (a document's best window, once scored), so spans cost nothing per window."""

    def of(self, units: np.ndarray) -> list[tuple[int, int]]: ...


@dataclass(frozen=True)
class KnownSpans:
    """Spans already worked out for every unit (the causal-LM prompt encoder has them while planning)."""

    spans: np.ndarray

    def of(self, units: np.ndarray) -> list[tuple[int, int]]:
        return [(start, end) for start, end in self.spans[units].tolist()]


@dataclass(frozen=True)
class ChunkPlan:
    """A chunk of pairs made into model inputs: the units, the pair each belongs to, and what was cut.

    ``query_tokens`` is each query's own length; over the encoder's ``query_room`` it was cut to fit.
    ``spans``, when asked for, gives any unit's (start, end) characters in its document.
    """

    units: Units
    owners: np.ndarray
    truncated_tokens: np.ndarray
    query_tokens: np.ndarray
    spans: UnitSpans | None = None

    @property
    def pair_tokens(self) -> np.ndarray:
        """Model tokens each pair runs (windows and special tokens included)."""
        return np.bincount(self.owners, weights=self.units.lengths, minlength=len(self.truncated_tokens)).astype(
            np.int64
        )
