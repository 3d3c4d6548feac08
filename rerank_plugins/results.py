"""The result type every ranking call returns."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["RankedResult", "Ranking", "ScoringStats"]


@dataclass(frozen=True, slots=True)
class RankedResult:
    """One document's place in a ranking.

    Attributes:
        index: Position of the document in the caller's input list.
        score: The model's raw score (as ``sentence_transformers.CrossEncoder.predict``
            returns it for one-label models; log-odds of the positive class for two-label ones).
        relevance_score: The same judgement mapped to [0, 1], always computed in fp32: the calibrated
            P(relevant) when the core has a calibration (``rerank-plugins calibrate``), else the sigmoid
            of the raw score (a number that ranks, not a probability).
        document: The document text that was scored.
        truncated_tokens: Document tokens cut off to fit ``max_length`` ("truncate" mode).
        windows: Number of windows scored for this document ("window" mode; 1 otherwise).
        fused_score: The blend with the retrieval score when fusion was asked for (it then sets the order).
        span: (start, end) characters of ``document`` that earned the score, from the tokenizer's offsets:
            the best window ("window" mode), the part that fit ("truncate" mode: shorter than the document
            when it was cut), the whole document when it fit. ``None`` when the scorer does not say.
    """

    index: int
    score: float
    relevance_score: float
    document: str
    truncated_tokens: int = 0
    windows: int = 1
    fused_score: float | None = None
    span: tuple[int, int] | None = None

    @property
    def passage(self) -> str:
        """The text of ``span`` (the whole document when there is no span): what to hand an LLM."""
        return self.document if self.span is None else self.document[self.span[0] : self.span[1]]


class Ranking(list[RankedResult]):
    """One query's results, best first: a plain list, plus what the whole candidate set says.

    Attributes:
        p_any_relevant: P(at least one candidate is relevant), from every candidate's calibrated
            ``relevance_score`` before ``score_threshold`` and ``top_n`` cut the list; ``None`` when the
            scores are not calibrated (a sigmoid of a raw score is not a probability to multiply).
        candidates: How many documents were ranked before the cut.
        abstained: Whether the calibration's "nothing relevant" rule emptied the list (``abstain=True`` and
            ``p_any_relevant`` below the rule's level), as opposed to ``score_threshold`` or no documents.
    """

    def __init__(
        self,
        results: Iterable[RankedResult] = (),
        p_any_relevant: float | None = None,
        candidates: int = 0,
        abstained: bool = False,
    ):
        super().__init__(results)
        self.p_any_relevant = p_any_relevant
        self.candidates = candidates
        self.abstained = abstained

    def __repr__(self) -> str:
        return (
            f"Ranking({list.__repr__(self)}, p_any_relevant={self.p_any_relevant}, candidates={self.candidates}, "
            f"abstained={self.abstained})"
        )


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
