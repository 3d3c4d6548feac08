"""The result type every ranking call returns."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RankedResult"]


@dataclass(frozen=True, slots=True)
class RankedResult:
    """One document's place in a ranking.

    Attributes:
        index: Position of the document in the caller's input list.
        score: The model's raw score (as ``sentence_transformers.CrossEncoder.predict``
            returns it for one-label models; log-odds of the positive class for two-label ones).
        relevance_score: The same judgement mapped to [0, 1], always computed in fp32.
        document: The document text that was scored.
        truncated_tokens: Document tokens cut off to fit ``max_length`` ("truncate" mode).
        windows: Number of windows scored for this document ("window" mode; 1 otherwise).
        fused_score: The blend with the retrieval score when fusion was asked for (it then sets the order).
    """

    index: int
    score: float
    relevance_score: float
    document: str
    truncated_tokens: int = 0
    windows: int = 1
    fused_score: float | None = None
