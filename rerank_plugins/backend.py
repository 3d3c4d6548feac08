"""``RerankBackend``: the ranking surface shared by the local core and the remote client.

A backend only has to score (query, document) pairs; checking inputs, thresholds, fusion and the order
of results live here once, so ``Reranker`` and ``RemoteReranker`` rank the same scores the same way.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rerank_plugins.fusion import check_fusion, fuse
from rerank_plugins.results import RankedResult, Ranking
from rerank_plugins.validation import (
    check_count,
    check_documents,
    check_query,
    check_ranking_query,
    check_score_threshold,
    check_top_n,
)

__all__ = ["PairScore", "RerankBackend", "rank_scored"]


@dataclass(frozen=True, slots=True)
class PairScore:
    """The model's judgement of one pair, before it is placed in a ranking."""

    score: float
    relevance_score: float
    truncated_tokens: int = 0
    windows: int = 1
    margin: float | None = None
    """The model's log-odds before any activation: what a calibration maps (``None`` from a service)."""
    calibrated: bool = False
    """Whether ``relevance_score`` is a calibrated probability."""
    query_p_any: float | None = None
    """P(any relevant) a service computed for the request this pair was scored in (``RemoteReranker``)."""
    span: tuple[int, int] | None = None
    """(start, end) characters of the document that earned the score (see ``RankedResult.span``)."""
    abstained: bool = False
    """A service's abstention rule said "nothing relevant" for the request this pair was scored in."""


@dataclass(frozen=True)
class _RankJob:
    queries: list[str]
    texts: list[list[str]]
    top_n: int | None
    threshold: float | None
    retrieval_scores: list[list[float] | None]
    fusion_weight: float | None

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return [(query, text) for query, docs in zip(self.queries, self.texts, strict=True) for text in docs]


def rank_scored(
    documents: list[str],
    scored: list[PairScore],
    fused: Sequence[float | None] | None = None,
    threshold: float | None = None,
    top_n: int | None = None,
    p_any: float | None = None,
    answer_from: float | None = None,
) -> Ranking:
    """One query's documents best first from their scores: the one place results are ordered.

    ``fused`` (one blend per document) sets the order when given; ``threshold`` applies to
    ``relevance_score`` before ``top_n``. ``p_any`` (P(at least one candidate is relevant), see
    ``RerankBackend.any_relevant``) rides along on the ranking; below ``answer_from`` (the abstention
    rule's level) the ranking is empty and says it abstained.
    """
    below = answer_from is not None and p_any is not None and p_any < answer_from
    if documents and (below or (scored and all(s.abstained for s in scored))):
        return Ranking([], p_any, len(documents), abstained=True)
    blends: Sequence[float | None] = fused if fused is not None else [None] * len(documents)
    results = [
        RankedResult(index, s.score, s.relevance_score, text, s.truncated_tokens, s.windows, blend, s.span)
        for index, (text, s, blend) in enumerate(zip(documents, scored, blends, strict=True))
    ]
    if threshold is not None:
        results = [result for result in results if result.relevance_score >= threshold]
    results.sort(key=lambda r: (-(r.fused_score if r.fused_score is not None else r.score), r.index))
    return Ranking(results[:top_n] if top_n is not None else results, p_any, len(documents))


class RerankBackend(ABC):
    """Scores pairs (subclasses) and ranks documents best first (here). Adapters accept any backend."""

    model_name: str

    @abstractmethod
    def _score_pairs(self, pairs: list[tuple[str, str]]) -> list[PairScore]:
        """Scores of ``pairs`` in input order."""

    async def _ascore_pairs(self, pairs: list[tuple[str, str]]) -> list[PairScore]:
        """``_score_pairs`` without blocking the event loop (a worker thread unless a backend is async)."""
        return await asyncio.to_thread(self._score_pairs, pairs)

    def answer_from(self) -> float | None:
        """The P(any relevant) below which a ranking abstains (``None``: never; a local core with ``abstain``)."""
        return None

    def any_relevant(self, scored: Sequence[PairScore]) -> float | None:
        """P(at least one of one query's candidates is relevant), ``None`` (unknown) unless the backend has a
        query-level map fitted on unanswerable queries: ``1 - prod(1 - p)`` is no substitute (it nears 1 for
        any few dozen candidates), so none is guessed here."""
        return None

    @abstractmethod
    def options(self) -> dict[str, Any]:
        """The constructor arguments: ``type(b)(**b.options())`` builds an equivalent backend."""

    # -- scores --------------------------------------------------------------------------------------

    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        """Raw model scores of ``documents`` against ``query``, in input order, as Python floats."""
        pairs = self._query_pairs(query, documents)
        return [result.score for result in self._score_pairs(pairs)] if pairs else []

    async def ascore(self, query: str, documents: Sequence[str]) -> list[float]:
        """``score`` without blocking the event loop."""
        pairs = self._query_pairs(query, documents)
        return [result.score for result in await self._ascore_pairs(pairs)] if pairs else []

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Raw scores of arbitrary (query, document) pairs, in input order (the ``BaseCrossEncoder`` shape)."""
        if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence):
            raise TypeError(f"pairs must be a list of (query, document) tuples, got {type(pairs).__name__}")
        checked = []
        for position, pair in enumerate(pairs):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(f"pairs[{position}] must be a (query, document) pair, got {type(pair).__name__}")
            checked.append(
                (check_query(pair[0], f"pairs[{position}][0]"), check_query(pair[1], f"pairs[{position}][1]"))
            )
        return [result.score for result in self._score_pairs(checked)] if checked else []

    def pair_scores(self, pairs: Sequence[tuple[str, str]]) -> list[PairScore]:
        """Each pair's full judgement (raw and 0-1 score, truncation, windows), in input order.

        For callers that schedule scoring themselves, such as the service's micro-batcher; pairs are
        not checked here, so pass (str, str) tuples.
        """
        return self._score_pairs(list(pairs)) if pairs else []

    def passage_spans(
        self, results: Sequence[RankedResult], context_tokens: int = 0, max_tokens: int | None = None
    ) -> list[tuple[int, int]]:
        """Each result's passage as (start, end) characters of its document: its ``span``, grown by
        ``context_tokens`` model tokens each side, then held to its first ``max_tokens`` tokens.

        What a compressing adapter hands the LLM instead of the whole document.
        """
        context_tokens = check_count(context_tokens, "context_tokens", 0)
        if max_tokens is not None:
            max_tokens = check_count(max_tokens, "max_tokens", 1)
        spans = []
        for result in results:
            if result.span is None:
                raise ValueError(
                    f"{type(self).__name__} ({self.model_name!r}) gave no evidence span for document {result.index}: "
                    "passages need a service that returns spans (rerank-plugins serve), or a local Reranker"
                )
            spans.append(result.span)
        if context_tokens == 0 and max_tokens is None:
            return spans
        return self._widen(results, spans, context_tokens, max_tokens)

    def _widen(
        self,
        results: Sequence[RankedResult],
        spans: list[tuple[int, int]],
        context_tokens: int,
        max_tokens: int | None,
    ) -> list[tuple[int, int]]:
        """Spans grown and held in the model's tokens: a local core has the tokenizer, a remote one does not."""
        raise ValueError(
            f"{type(self).__name__} has no tokenizer to count passage_context or max_passage_tokens in: "
            "use a local Reranker for them, or take the service's spans as they are"
        )

    @staticmethod
    def _query_pairs(query: str, documents: Sequence[str]) -> list[tuple[str, str]]:
        query = check_query(query)
        return [(query, text) for text in check_documents(documents)]

    # -- rankings ------------------------------------------------------------------------------------

    def rank(
        self,
        query: str,
        documents: Sequence[str],
        top_n: int | None = None,
        score_threshold: float | None = None,
        *,
        retrieval_scores: Sequence[float] | None = None,
        fusion_weight: float | None = None,
    ) -> Ranking:
        """Documents best first; ``score_threshold`` (on ``relevance_score``) applies before ``top_n``.

        With ``fusion_weight`` and one ``retrieval_scores`` entry per document, the order follows
        ``fusion_weight * minmax(score) + (1 - fusion_weight) * minmax(retrieval score)`` (``fused_score``).
        """
        job = self._one_query_job(query, documents, top_n, score_threshold, retrieval_scores, fusion_weight)
        pairs = job.pairs
        return self._rankings(job, self._score_pairs(pairs) if pairs else [])[0]

    async def arank(
        self,
        query: str,
        documents: Sequence[str],
        top_n: int | None = None,
        score_threshold: float | None = None,
        *,
        retrieval_scores: Sequence[float] | None = None,
        fusion_weight: float | None = None,
    ) -> Ranking:
        """``rank`` without blocking the event loop."""
        job = self._one_query_job(query, documents, top_n, score_threshold, retrieval_scores, fusion_weight)
        pairs = job.pairs
        return self._rankings(job, await self._ascore_pairs(pairs) if pairs else [])[0]

    def rank_many(
        self,
        queries: Sequence[str],
        documents_per_query: Sequence[Sequence[str]],
        top_n: int | None = None,
        score_threshold: float | None = None,
        *,
        retrieval_scores_per_query: Sequence[Sequence[float]] | None = None,
        fusion_weight: float | None = None,
    ) -> list[Ranking]:
        """Rank each query's documents, scoring all pairs of all queries together."""
        query_list = [
            check_ranking_query(query, f"queries[{i}]") for i, query in enumerate(check_documents(queries, "queries"))
        ]
        if isinstance(documents_per_query, (str, bytes)) or not isinstance(documents_per_query, Sequence):
            raise TypeError(
                f"documents_per_query must be a list of lists of str, got {type(documents_per_query).__name__}"
            )
        if len(query_list) != len(documents_per_query):
            raise ValueError(f"got {len(query_list)} queries but {len(documents_per_query)} document lists")
        texts = [check_documents(docs, f"documents_per_query[{i}]") for i, docs in enumerate(documents_per_query)]
        per_query = [None] * len(texts) if retrieval_scores_per_query is None else retrieval_scores_per_query
        if len(per_query) != len(texts):
            raise ValueError(f"got {len(texts)} document lists but {len(per_query)} retrieval score lists")
        fusion = [
            check_fusion(scores, fusion_weight, len(docs), f"retrieval_scores_per_query[{i}]")
            for i, (scores, docs) in enumerate(zip(per_query, texts, strict=True))
        ]
        job = _RankJob(
            query_list, texts, check_top_n(top_n), check_score_threshold(score_threshold), fusion, fusion_weight
        )
        pairs = job.pairs
        return self._rankings(job, self._score_pairs(pairs) if pairs else [])

    @staticmethod
    def _one_query_job(
        query: str,
        documents: Sequence[str],
        top_n: int | None,
        score_threshold: float | None,
        retrieval_scores: Sequence[float] | None,
        fusion_weight: float | None,
    ) -> _RankJob:
        query = check_ranking_query(query)
        texts = check_documents(documents)
        fusion = check_fusion(retrieval_scores, fusion_weight, len(texts))
        threshold = check_score_threshold(score_threshold)
        return _RankJob([query], [texts], check_top_n(top_n), threshold, [fusion], fusion_weight)

    def _rankings(self, job: _RankJob, scored: list[PairScore]) -> list[Ranking]:
        rankings = []
        offset = 0
        for position, docs in enumerate(job.texts):
            own = scored[offset : offset + len(docs)]
            offset += len(docs)
            fused = None
            first_stage = job.retrieval_scores[position]
            if first_stage is not None and job.fusion_weight is not None:
                fused = list(fuse([s.score for s in own], first_stage, float(job.fusion_weight)))
            p_any = self.any_relevant(own)
            rankings.append(rank_scored(docs, own, fused, job.threshold, job.top_n, p_any, self.answer_from()))
        return rankings
