"""The result type every ranking call returns."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RankedResult", "ScoringStats"]


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


@dataclass(frozen=True, slots=True)
class ScoringStats:
    """Work a ``Reranker`` has done since it was made (or last reset).

    Attributes:
        pairs: (query, document) pairs scored by the model (cache hits and duplicates excluded).
        model_inputs: Sequences run through the model (more than ``pairs`` in window mode).
        tokens: Real tokens in those sequences.
        padded_tokens: Tokens including padding, as the model saw them.
        seconds: Time spent tokenising and running the model.
    """

    pairs: int = 0
    model_inputs: int = 0
    tokens: int = 0
    padded_tokens: int = 0
    seconds: float = 0.0

    @property
    def padding_waste(self) -> float:
        """Share of the model's input positions that were padding."""
        return 1.0 - self.tokens / self.padded_tokens if self.padded_tokens else 0.0

    def __add__(self, other: ScoringStats) -> ScoringStats:
        return ScoringStats(
            self.pairs + other.pairs,
            self.model_inputs + other.model_inputs,
            self.tokens + other.tokens,
            self.padded_tokens + other.padded_tokens,
            self.seconds + other.seconds,
        )
