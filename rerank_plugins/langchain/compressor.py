"""``RerankCompressor``: a LangChain ``BaseDocumentCompressor`` over the shared scoring core."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import ConfigDict

from rerank_plugins.langchain.settings import LangChainRerankSettings

__all__ = ["RerankCompressor"]


class RerankCompressor(LangChainRerankSettings, BaseDocumentCompressor):
    """Reranks retrieved documents with a cross-encoder and keeps the best ``top_n``.

    Returned documents are new objects with the same ``page_content`` and ``id``; their metadata is a
    copy with ``relevance_score`` (0-1), ``rerank_score`` (raw) and ``retrieval_rank`` (1-based input
    position) added. The caller's documents are never changed. Inside a LangChain run (a
    ``ContextualCompressionRetriever``, a runnable) the ``rerank_verdict`` custom event carries
    P(any relevant) and whether the core abstained to the run's handlers, also when nothing is kept.

    Example:
        >>> compressor = RerankCompressor(model="../shared/models/minilm-l6-scifact-ce", top_n=3)  # doctest: +SKIP
        >>> retriever = ContextualCompressionRetriever(
        ...     base_compressor=compressor, base_retriever=base)  # doctest: +SKIP
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        """Rerank ``documents`` for ``query``; best first, at most ``top_n``."""
        return self.rerank(documents, query, self.top_n, callbacks)

    async def acompress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        """Like ``compress_documents``; the model runs in a worker thread so the event loop stays free."""
        return await self.arerank(documents, query, self.top_n, callbacks)
