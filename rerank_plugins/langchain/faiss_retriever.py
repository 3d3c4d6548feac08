"""``FaissDocumentRetriever``: our FAISS bi-encoder retriever as a LangChain ``BaseRetriever``."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from rerank_plugins.langchain.documents import RETRIEVAL_SCORE_KEY
from rerank_plugins.retrieval import FaissRetriever, SearchHit

__all__ = ["FaissDocumentRetriever"]


def _document(hit: SearchHit) -> Document:
    return Document(page_content=hit.text, id=hit.id, metadata={**hit.metadata, RETRIEVAL_SCORE_KEY: hit.score})


class FaissDocumentRetriever(BaseRetriever):
    """Returns the ``k`` nearest documents, each with its cosine similarity in ``metadata["retrieval_score"]``.

    ``k`` is a field and an ``invoke`` keyword. Put a ``RerankRetriever`` on top to rerank them.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    retriever: FaissRetriever = Field(description="The FAISS index and bi-encoder to search.")
    k: int = Field(default=4, ge=1, description="Documents to return.")

    @classmethod
    def from_index(
        cls, index: FaissRetriever, k: int = 4, search_kwargs: dict[str, Any] | None = None
    ) -> FaissDocumentRetriever:
        """``index`` as a LangChain retriever returning ``k`` documents. The adapter makes it, not the index, so
        retrieval never imports LangChain; ``search_kwargs={"k": n}`` is taken as LangChain's vector stores take it."""
        options = dict(search_kwargs or {})
        k = options.pop("k", k)
        if options:
            raise TypeError(f"search_kwargs takes only 'k', got {sorted(options)}")
        return cls(retriever=index, k=k)

    def _search(self, query: str, k: int | None) -> list[Document]:
        return [_document(hit) for hit in self.retriever.search(query, k=k or self.k)]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None, **kwargs: Any
    ) -> list[Document]:
        return self._search(query, k)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, k: int | None = None, **kwargs: Any
    ) -> list[Document]:
        return await asyncio.to_thread(self._search, query, k)
