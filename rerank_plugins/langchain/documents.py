"""Converting between LangChain ``Document`` lists and the core's rankings, without touching the inputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.documents import Document

from rerank_plugins.reranker import Reranker
from rerank_plugins.results import RankedResult
from rerank_plugins.settings import RerankSettings

__all__ = [
    "FUSED_SCORE_KEY",
    "RELEVANCE_SCORE_KEY",
    "RETRIEVAL_SCORE_KEY",
    "RERANK_SCORE_KEY",
    "RETRIEVAL_RANK_KEY",
    "TRUNCATED_TOKENS_KEY",
    "WINDOWS_KEY",
    "page_contents",
    "reranked_documents",
]

RELEVANCE_SCORE_KEY = "relevance_score"
"""Metadata key of the 0-1 relevance score (the key LangChain's own rerankers use)."""
RERANK_SCORE_KEY = "rerank_score"
"""Metadata key of the cross-encoder's raw score."""
RETRIEVAL_RANK_KEY = "retrieval_rank"
"""Metadata key of the document's 1-based rank before reranking (its position in the input)."""
TRUNCATED_TOKENS_KEY = "rerank_truncated_tokens"
"""Metadata key of how many document tokens did not fit the model ("truncate" mode)."""
WINDOWS_KEY = "rerank_windows"
"""Metadata key of how many windows were scored ("window" mode; 1 otherwise)."""
RETRIEVAL_SCORE_KEY = "retrieval_score"
"""Default metadata key that fusion reads the first-stage retrieval score from."""
FUSED_SCORE_KEY = "fused_score"
"""Metadata key of the blended score, present when fusion is on."""


def page_contents(documents: Any) -> list[str]:
    """The texts to score, with a clear error for anything that is not a list of ``Document``."""
    if isinstance(documents, (str, bytes)) or not isinstance(documents, Sequence):
        raise TypeError(f"documents must be a list of langchain Document, got {type(documents).__name__}")
    texts = []
    for position, document in enumerate(documents):
        if not isinstance(document, Document):
            raise TypeError(f"documents[{position}] must be a langchain Document, got {type(document).__name__}")
        texts.append(document.page_content)
    return texts


def reranked_documents(documents: Sequence[Document], ranking: list[RankedResult]) -> list[Document]:
    """New documents in ranked order: same content and id, metadata copied with the scores added."""
    reranked = []
    for result in ranking:
        original = documents[result.index]
        metadata = {
            **original.metadata,
            RELEVANCE_SCORE_KEY: result.relevance_score,
            RERANK_SCORE_KEY: result.score,
            RETRIEVAL_RANK_KEY: result.index + 1,
            TRUNCATED_TOKENS_KEY: result.truncated_tokens,
            WINDOWS_KEY: result.windows,
        }
        if result.fused_score is not None:
            metadata[FUSED_SCORE_KEY] = result.fused_score
        reranked.append(original.model_copy(update={"metadata": metadata}))
    return reranked


def rank_arguments(
    documents: Sequence[Document], settings: RerankSettings, score_key: str, top_n: int | None
) -> dict[str, Any]:
    """Keyword arguments of ``Reranker.rank`` for these documents and settings (fusion reads ``score_key``)."""
    arguments: dict[str, Any] = {"top_n": top_n, "score_threshold": settings.score_threshold}
    if settings.fusion_weight is not None:
        missing = [i for i, document in enumerate(documents) if score_key not in document.metadata]
        if missing:
            raise ValueError(
                f"fusion_weight needs each document's retrieval score in metadata[{score_key!r}]; "
                f"documents {missing[:5]} have none"
            )
        arguments["retrieval_scores"] = [document.metadata[score_key] for document in documents]
        arguments["fusion_weight"] = settings.fusion_weight
    return arguments


def rerank(
    reranker: Reranker,
    documents: Sequence[Document],
    query: str,
    settings: RerankSettings,
    score_key: str,
    top_n: int | None,
) -> list[Document]:
    """Rank ``documents`` for ``query`` with ``reranker``, as ``settings`` say, keeping ``top_n``."""
    texts = page_contents(documents)
    ranking = reranker.rank(query, texts, **rank_arguments(documents, settings, score_key, top_n))
    return reranked_documents(documents, ranking)


async def arerank(
    reranker: Reranker,
    documents: Sequence[Document],
    query: str,
    settings: RerankSettings,
    score_key: str,
    top_n: int | None,
) -> list[Document]:
    """``rerank`` with the model running in a worker thread, off the event loop."""
    texts = page_contents(documents)
    ranking = await reranker.arank(query, texts, **rank_arguments(documents, settings, score_key, top_n))
    return reranked_documents(documents, ranking)
