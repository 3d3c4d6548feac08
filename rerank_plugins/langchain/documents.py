"""Converting between LangChain ``Document`` lists and the core's rankings, without touching the inputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.documents import Document

from rerank_plugins.metadata_keys import (
    DOCUMENT_ID_KEY,
    FUSED_SCORE_KEY,
    P_ANY_RELEVANT_KEY,
    RELEVANCE_SCORE_KEY,
    RERANK_SCORE_KEY,
    RETRIEVAL_RANK_KEY,
    RETRIEVAL_SCORE_KEY,
    SPAN_KEY,
    TEXT_LENGTH_KEY,
    TRUNCATED_TOKENS_KEY,
    WINDOWS_KEY,
)
from rerank_plugins.metadata_text import ScoredText, format_metadata, scored_text, text_span
from rerank_plugins.options import MetadataMode
from rerank_plugins.results import RankedResult, Ranking

__all__ = [
    "DOCUMENT_ID_KEY",
    "FUSED_SCORE_KEY",
    "P_ANY_RELEVANT_KEY",
    "RELEVANCE_SCORE_KEY",
    "RETRIEVAL_SCORE_KEY",
    "RERANK_SCORE_KEY",
    "RETRIEVAL_RANK_KEY",
    "SPAN_KEY",
    "TEXT_LENGTH_KEY",
    "TRUNCATED_TOKENS_KEY",
    "WINDOWS_KEY",
    "document_texts",
    "page_contents",
    "reranked_documents",
]


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


def document_texts(documents: Any, mode: MetadataMode) -> list[ScoredText]:
    """What the model reads of each document: ``page_content`` alone (``"none"``), or every metadata key but the
    reranker's own as ``key: value`` lines before it, with LlamaIndex's default templates (a ``Document`` has no
    excluded keys, so ``"embed"``, ``"llm"`` and ``"all"`` are the same); a LlamaIndex node with the same text
    and metadata reads the same."""
    texts = page_contents(documents)
    if mode == "none":
        return [ScoredText(text, 0) for text in texts]
    return [scored_text(text, format_metadata(doc.metadata)) for text, doc in zip(texts, documents, strict=True)]


def reranked_documents(
    documents: Sequence[Document],
    ranking: list[RankedResult],
    passages: Sequence[tuple[int, int]] | None = None,
    offsets: Sequence[int | None] | None = None,
) -> list[Document]:
    """New documents in ranked order: same content and id, metadata copied with the scores added.

    With ``passages`` (one (start, end) of the scored text per result) each ``page_content`` is that passage
    of the text, and the metadata says which part of which whole text it is. ``offsets`` (one per input
    document) say where ``page_content`` starts in the scored text; without them the two are the same.
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
            offset = offsets[result.index] if offsets is not None else 0
            start, end = text_span(passages[position], offset, len(original.page_content))
            metadata[SPAN_KEY] = [start, end]
            metadata[TEXT_LENGTH_KEY] = len(original.page_content)
            metadata[DOCUMENT_ID_KEY] = original.id
            update["page_content"] = original.page_content[start:end]
        reranked.append(original.model_copy(update=update))
    return reranked
