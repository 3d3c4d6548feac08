"""Converting between LangChain ``Document`` lists and the core's rankings, without touching the inputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.documents import Document

from rerank_plugins.results import RankedResult, Ranking

__all__ = [
    "DOCUMENT_ID_KEY",
    "DOCUMENT_LENGTH_KEY",
    "FUSED_SCORE_KEY",
    "P_ANY_RELEVANT_KEY",
    "RELEVANCE_SCORE_KEY",
    "RETRIEVAL_SCORE_KEY",
    "RERANK_SCORE_KEY",
    "RETRIEVAL_RANK_KEY",
    "SPAN_KEY",
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
P_ANY_RELEVANT_KEY = "rerank_p_any_relevant"
"""Metadata key of P(at least one candidate is relevant), present when the scores are calibrated."""
SPAN_KEY = "rerank_span"
"""Metadata key of [start, end]: the characters of the whole text that ``page_content`` holds (compress="passage")."""
DOCUMENT_LENGTH_KEY = "rerank_document_length"
"""Metadata key of the whole text's length in characters (compress="passage")."""
DOCUMENT_ID_KEY = "rerank_document_id"
"""Metadata key of the whole document's id (compress="passage"; the passage keeps it as its own ``id`` too)."""


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


def reranked_documents(
    documents: Sequence[Document], ranking: list[RankedResult], passages: Sequence[tuple[int, int]] | None = None
) -> list[Document]:
    """New documents in ranked order: same content and id, metadata copied with the scores added.

    With ``passages`` (one (start, end) per result) each ``page_content`` is that passage of the text, and
    the metadata says which part of which whole text it is.
    """
    reranked = []
    for position, result in enumerate(ranking):
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
        p_any = ranking.p_any_relevant if isinstance(ranking, Ranking) else None
        if p_any is not None:
            metadata[P_ANY_RELEVANT_KEY] = p_any
        update: dict[str, Any] = {"metadata": metadata}
        if passages is not None:
            start, end = passages[position]
            metadata[SPAN_KEY] = [start, end]
            metadata[DOCUMENT_LENGTH_KEY] = len(original.page_content)
            metadata[DOCUMENT_ID_KEY] = original.id
            update["page_content"] = original.page_content[start:end]
        reranked.append(original.model_copy(update=update))
    return reranked
