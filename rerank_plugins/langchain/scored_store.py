"""``ScoredVectorStoreRetriever``: any LangChain vector store's hits with their scores in metadata, for fusion.

Stock retrievers (``vector_store.as_retriever()``) drop the similarity score, so fusion has nothing to
blend. This one asks the store for its scores and puts each in ``metadata["retrieval_score"]``, higher
is better: the store's 0-1 relevance scores (``similarity_search_with_relevance_scores``) by default, or
its raw ``similarity_search_with_score`` as a similarity, or negated as a distance (fusion min-max
scales them, so only the direction matters).
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.vectorstores import VectorStore
from pydantic import ConfigDict, Field

from rerank_plugins.langchain.documents import RETRIEVAL_SCORE_KEY

__all__ = ["ScoredVectorStoreRetriever"]


def _scored(document: Document, score: float) -> Document:
    """A copy of ``document`` with ``score`` in its metadata; the store's own object is left as it was."""
    return Document(
        page_content=document.page_content, id=document.id, metadata={**document.metadata, RETRIEVAL_SCORE_KEY: score}
    )


class ScoredVectorStoreRetriever(BaseRetriever):
    """The ``k`` nearest documents of ``vector_store``, each with its 0-1 relevance in ``metadata["retrieval_score"]``.

    Example:
        >>> RerankRetriever(base_retriever=ScoredVectorStoreRetriever(vector_store=store, k=50),
        ...                 model="cross-encoder/ms-marco-MiniLM-L6-v2", fusion_weight=0.7)  # doctest: +SKIP
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    vector_store: VectorStore = Field(description="Any LangChain vector store (Chroma, PGVector, FAISS, ...).")
    k: int = Field(default=4, ge=1, description="Documents to return.")
    scores: Literal["relevance", "similarity", "distance"] = Field(
        default="relevance",
        description="relevance: the store's 0-1 relevance scores; similarity: its raw scores, higher is better "
        "(InMemoryVectorStore's cosine); distance: its raw scores, lower is better (FAISS's L2).",
    )

    def _search(self, query: str, k: int | None, kwargs: dict[str, Any]) -> list[Document]:
        count = k or self.k
        if self.scores != "relevance":
            sign = -1.0 if self.scores == "distance" else 1.0
            hits = self.vector_store.similarity_search_with_score(query, k=count, **kwargs)
            return [_scored(document, sign * float(score)) for document, score in hits]
        try:
            hits = self.vector_store.similarity_search_with_relevance_scores(query, k=count, **kwargs)
        except NotImplementedError:
            raise ValueError(
                f"{type(self.vector_store).__name__} has no relevance scores: pass scores='similarity' if its "
                "similarity_search_with_score is higher-is-better, or scores='distance' if lower is better"
            ) from None
        return [_scored(document, float(score)) for document, score in hits]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None, **kwargs: Any
    ) -> list[Document]:
        return self._search(query, k, kwargs)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, k: int | None = None, **kwargs: Any
    ) -> list[Document]:
        return await asyncio.to_thread(self._search, query, k, kwargs)
