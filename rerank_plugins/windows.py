"""Where a long document's windows start and end, in tokens, and the characters each one covers.

Windows step by a fixed number of tokens (``"tokens"``), or snap to sentence boundaries within a few
tokens (``"sentence"``), so that the passage a window stands for reads from the start of a sentence.
Character spans come from the tokenizer's offsets, so they are exact slices of the caller's text.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import Literal

__all__ = [
    "SNAP_TOKENS",
    "WindowBoundaries",
    "char_span",
    "sentence_starts",
    "sentence_token_starts",
    "sentence_windows",
    "token_windows",
    "widen_span",
    "window_step",
]

WindowBoundaries = Literal["tokens", "sentence"]

SNAP_TOKENS = 32
"""Furthest (in tokens) a window's start or end moves to meet a sentence boundary; a quarter window at most."""

_SENTENCE_START = re.compile(
    r"(?<=[.!?\u2026])[\"'\u201d\u2019)\]]*\s+(?=[\"'\u201c\u2018(\[]*[^\s\"'\u201c\u2018(\[a-z])"  # ". The"
    r"|(?<=[\u3002\uff01\uff1f])\s*(?=\S)"  # CJK full stops need no space after them
    r"|\n\s*(?=\S)"  # a line break starts a new passage
)
"""A sentence starts after ., !, ? or an ellipsis (and any closing quotes or brackets) and white space, when
the next word does not begin in lower case ("e.g. the" goes on); after a CJK full stop; after a line break."""


def sentence_starts(text: str) -> list[int]:
    """Character positions where a sentence of ``text`` begins, after the first, in order."""
    return [match.end() for match in _SENTENCE_START.finditer(text) if 0 < match.end() < len(text)]


def sentence_token_starts(token_offsets: Sequence[tuple[int, int]], text: str, shift: int = 0) -> list[int]:
    """Token indices (into ``token_offsets``) where a sentence of ``text`` begins, after the first.

    ``shift`` is where ``text`` starts in the string the offsets point into (a causal-LM prompt).
    """
    token_starts = [start - shift for start, _ in token_offsets]
    found = (bisect_left(token_starts, position) for position in sentence_starts(text))
    return sorted({index for index in found if 0 < index < len(token_offsets)})


def window_step(budget: int, overlap: int | None) -> int:
    """Tokens from one window's start to the next: ``budget - overlap``; half a window when ``overlap`` is None."""
    return budget - (budget // 2 if overlap is None else min(overlap, budget - 1))


def token_windows(length: int, budget: int, step: int) -> list[tuple[int, int]]:
    """(start, length) of windows of ``budget`` tokens stepping by ``step`` until the last reaches the end."""
    windows = []
    start = 0
    while True:
        windows.append((start, min(budget, length - start)))
        if start + budget >= length:
            return windows
        start += step


def sentence_windows(length: int, budget: int, step: int, boundaries: Sequence[int]) -> list[tuple[int, int]]:
    """(start, length) of windows of at most ``budget`` tokens over ``length`` tokens, on sentence boundaries.

    Windows advance by ``step`` as in token mode, but each start and each end (other than the text's
    own) moves to the nearest sentence boundary within ``SNAP_TOKENS`` (or a quarter window). Every token
    is in some window, and each window starts after the previous one.
    """
    snap = min(SNAP_TOKENS, budget // 4)
    windows = []
    start = 0
    while True:
        end = start + budget
        if end >= length:
            windows.append((start, length - start))
            return windows
        earlier = bisect_right(boundaries, end) - 1  # the last boundary at or before the nominal end
        if earlier >= 0 and boundaries[earlier] > start and boundaries[earlier] >= end - snap:
            end = boundaries[earlier]
        windows.append((start, end - start))
        nominal = start + step
        low = bisect_left(boundaries, max(start + 1, nominal - snap))
        high = bisect_right(boundaries, min(end, nominal + snap))
        near = boundaries[low:high]
        start = min(near, key=lambda b: abs(b - nominal)) if near else min(nominal, end)


def char_span(
    token_offsets: Sequence[tuple[int, int]], first: int, count: int, text: str, shift: int = 0
) -> tuple[int, int]:
    """Characters of ``text`` covered by tokens ``first .. first + count - 1``, without white space at either end.

    ``shift`` is where ``text`` starts in the string the offsets point into; the span is clipped to ``text``.
    """
    start = min(max(token_offsets[first][0] - shift, 0), len(text))
    end = min(max(token_offsets[first + count - 1][1] - shift, start), len(text))
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def widen_span(
    token_offsets: Sequence[tuple[int, int]], span: tuple[int, int], text: str, context: int, most: int | None
) -> tuple[int, int]:
    """``span`` grown by ``context`` tokens each side, then held to its first ``most`` tokens (``None``: all)."""
    ends = [end for _, end in token_offsets]
    starts = [start for start, _ in token_offsets]
    first = bisect_right(ends, span[0])
    last = bisect_left(starts, span[1]) - 1
    if first > last:
        return span
    first, last = max(0, first - context), min(len(token_offsets) - 1, last + context)
    if most is not None:
        last = min(last, first + most - 1)
    return char_span(token_offsets, first, last - first + 1, text)
