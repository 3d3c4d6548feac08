"""Retrieve with the bi-encoder, rerank with the cross-encoder, blend the two, and measure all three."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rerank_plugins.evaluation.beir import BeirData
from rerank_plugins.evaluation.metrics import score_run
from rerank_plugins.fusion import fuse
from rerank_plugins.reranker import Reranker
from rerank_plugins.retrieval import FaissRetriever

__all__ = ["EvalReport", "dev_split", "evaluate", "tune_fusion_weight"]

logger = logging.getLogger(__name__)

FUSION_GRID = tuple(round(step * 0.05, 2) for step in range(21))


@dataclass
class EvalReport:
    """Metrics of retrieval alone, reranked and fused, with the work and time it took."""

    queries: int
    top_k: int
    metrics: dict[str, dict[str, float]]
    fusion_weight: float | None
    timing: dict[str, float]
    work: dict[str, float]
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Candidates:
    query_ids: list[str]
    doc_ids: list[list[str]]
    retrieval: list[list[float]]
    rerank: list[list[float]]


def dev_split(data: BeirData, size: int = 80, seed: int = 13) -> BeirData:
    """A seeded hold-out of ``size`` queries (shuffled sorted ids, first ``size``), e.g. from the train split."""
    ordered = sorted(data.queries, key=lambda query_id: (len(query_id), query_id))
    random.Random(seed).shuffle(ordered)
    chosen = ordered[:size]
    return BeirData(data.corpus, {q: data.queries[q] for q in chosen}, {q: data.qrels[q] for q in chosen})


def _candidates(
    data: BeirData, retriever: FaissRetriever, reranker: Reranker, top_k: int
) -> tuple[_Candidates, dict[str, dict[str, float]]]:
    query_ids = list(data.queries)
    started = time.perf_counter()
    hits = retriever.search_many([data.queries[q] for q in query_ids], k=top_k)
    retrieved = time.perf_counter()
    before = reranker.stats
    rankings = reranker.rank_many([data.queries[q] for q in query_ids], [[h.text for h in row] for row in hits])
    reranked = time.perf_counter()
    spent = reranker.stats
    rerank_scores = []
    for row, ranking in zip(hits, rankings, strict=True):
        by_index = {result.index: result.score for result in ranking}
        rerank_scores.append([by_index[i] for i in range(len(row))])
    candidates = _Candidates(
        query_ids,
        [[h.id for h in row] for row in hits],
        [[h.score for h in row] for row in hits],
        rerank_scores,
    )
    pairs = spent.pairs - before.pairs
    timing = {
        "retrieval_seconds": retrieved - started,
        "rerank_seconds": reranked - retrieved,
        "rerank_pairs_per_second": pairs / (reranked - retrieved) if reranked > retrieved else 0.0,
    }
    work = {
        "pairs": sum(len(row) for row in hits),
        "pairs_scored": pairs,
        "tokens_scored": spent.tokens - before.tokens,
        "padding_waste": 1 - (spent.tokens - before.tokens) / max(1, spent.padded_tokens - before.padded_tokens),
    }
    return candidates, {"timing": timing, "work": work}


def _run(candidates: _Candidates, scores: Sequence[Sequence[float]]) -> dict[str, dict[str, float]]:
    return {
        query_id: dict(zip(doc_ids, map(float, row), strict=True))
        for query_id, doc_ids, row in zip(candidates.query_ids, candidates.doc_ids, scores, strict=True)
    }


def _fused(candidates: _Candidates, weight: float) -> list[list[float]]:
    return [fuse(r, b, weight) for r, b in zip(candidates.rerank, candidates.retrieval, strict=True)]


def tune_fusion_weight(
    data: BeirData, retriever: FaissRetriever, reranker: Reranker, top_k: int, grid: Sequence[float] = FUSION_GRID
) -> tuple[float, dict[float, float]]:
    """The fusion weight with the best NDCG@10 on ``data`` (use dev queries, never the test split)."""
    candidates, _ = _candidates(data, retriever, reranker, top_k)
    ndcg = {w: score_run(_run(candidates, _fused(candidates, w)), data.qrels, top_k)["ndcg@10"] for w in grid}
    best = max(grid, key=lambda w: (ndcg[w], w))
    logger.info("fusion weight %.2f has the best dev NDCG@10 (%.4f)", best, ndcg[best])
    return best, ndcg


def evaluate(
    data: BeirData,
    retriever: FaissRetriever,
    reranker: Reranker,
    top_k: int = 50,
    fusion_weight: float | None = None,
) -> EvalReport:
    """Measure retrieval alone, reranked top-``top_k``, and (with ``fusion_weight``) their blend."""
    candidates, costs = _candidates(data, retriever, reranker, top_k)
    metrics = {
        "retrieval": score_run(_run(candidates, candidates.retrieval), data.qrels, top_k),
        "reranked": score_run(_run(candidates, candidates.rerank), data.qrels, top_k),
    }
    if fusion_weight is not None:
        metrics["fused"] = score_run(_run(candidates, _fused(candidates, fusion_weight)), data.qrels, top_k)
    return EvalReport(len(candidates.query_ids), top_k, metrics, fusion_weight, costs["timing"], costs["work"])
