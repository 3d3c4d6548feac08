"""``RerankCompressor``: a LangChain ``BaseDocumentCompressor`` over the shared scoring core."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import ConfigDict, Field, model_validator

from rerank_plugins.langchain.documents import RETRIEVAL_SCORE_KEY, arerank, rerank
from rerank_plugins.reranker import Reranker
from rerank_plugins.settings import RerankSettings

__all__ = ["RerankCompressor"]


class RerankCompressor(RerankSettings, BaseDocumentCompressor):
    """Reranks retrieved documents with a cross-encoder and keeps the best ``top_n``.

    Returned documents are new objects with the same ``page_content`` and ``id``; their metadata is a
    copy with ``relevance_score`` (0-1), ``rerank_score`` (raw) and ``retrieval_rank`` (1-based input
    position) added. The caller's documents are never changed.

    Example:
        >>> compressor = RerankCompressor(model="../shared/models/minilm-l6-scifact-ce", top_n=3)  # doctest: +SKIP
        >>> retriever = ContextualCompressionRetriever(
        ...     base_compressor=compressor, base_retriever=base)  # doctest: +SKIP
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    retrieval_score_key: str = Field(
        RETRIEVAL_SCORE_KEY, description="Metadata key holding each document's retrieval score, read for fusion."
    )
    reranker: Reranker | None = Field(
        None, exclude=True, description="A ready scoring core to share; built from the model options when omitted."
    )

    @model_validator(mode="after")
    def _build_core(self) -> RerankCompressor:
        self.reranker = self.resolve_reranker(self.reranker)
        return self

    @property
    def core(self) -> Reranker:
        """The scoring core in use."""
        assert self.reranker is not None  # set by the validator
        return self.reranker

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        """Rerank ``documents`` for ``query``; best first, at most ``top_n``."""
        return rerank(self.core, documents, query, self, self.retrieval_score_key, self.top_n)

    async def acompress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        """Like ``compress_documents``; the model runs in a worker thread so the event loop stays free."""
        return await arerank(self.core, documents, query, self, self.retrieval_score_key, self.top_n)

    def __repr_args__(self) -> Any:
        return [(name, value) for name, value in super().__repr_args__() if name != "reranker"] + [
            ("reranker", repr(self.reranker))
        ]
