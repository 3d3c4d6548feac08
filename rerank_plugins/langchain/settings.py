"""What the LangChain compressor and retriever share: options, the core, and the rerank step itself."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import Callbacks
from langchain_core.documents import Document
from pydantic import ConfigDict, Field, model_validator
from typing_extensions import Self

from rerank_plugins.backend import RerankBackend
from rerank_plugins.langchain.documents import RETRIEVAL_SCORE_KEY, document_texts, reranked_documents
from rerank_plugins.langchain.verdict import RerankVerdict, adispatch_verdict, dispatch_verdict, verdict
from rerank_plugins.metadata_text import ScoredText
from rerank_plugins.remote.credentials import API_KEY_ENV
from rerank_plugins.results import RankedResult
from rerank_plugins.settings import RerankSettings

__all__ = ["LangChainRerankSettings"]


class LangChainRerankSettings(RerankSettings):
    """``RerankSettings`` plus a shareable core and where fusion finds each document's retrieval score."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retrieval_score_key: str = Field(
        default=RETRIEVAL_SCORE_KEY,
        description="Metadata key holding each document's retrieval score, read for fusion.",
    )
    reranker: RerankBackend | None = Field(
        default=None,
        exclude=True,
        description="A ready Reranker or RemoteReranker to share; built from the options if omitted.",
    )

    @model_validator(mode="after")
    def _build_core(self) -> Self:
        self.reranker = self.resolve_reranker(self.reranker)
        return self

    @property
    def lc_secrets(self) -> dict[str, str]:
        """LangChain's map of secret fields to the variables they are read from again on load."""
        return {"api_key": API_KEY_ENV}

    @property
    def core(self) -> RerankBackend:
        """The scoring core in use."""
        assert self.reranker is not None  # set by the validator
        return self.reranker

    def _rank_arguments(self, documents: Sequence[Document], top_n: int | None) -> dict[str, Any]:
        key = self.retrieval_score_key
        return self.rank_arguments(
            top_n,
            (document.metadata.get(key) for document in documents),
            f"each document's retrieval score in metadata[{key!r}] (a vector store's retriever drops it: "
            "wrap the store as ScoredVectorStoreRetriever(vector_store=store, k=50) to keep it)",
            "documents",
        )

    def _verdict(
        self, documents: Sequence[Document], scored: list[ScoredText], ranking: list[RankedResult]
    ) -> RerankVerdict:
        passages = self.passages(ranking)
        return verdict(reranked_documents(documents, ranking, passages, [s.offset for s in scored]), ranking)

    def rerank_with_verdict(
        self, documents: Sequence[Document], query: str, top_n: int | None, callbacks: Callbacks = None
    ) -> RerankVerdict:
        """New documents for ``query``, best first, at most ``top_n``, with P(any relevant) and whether the core
        abstained; the same verdict goes to the current run's handlers as the ``rerank_verdict`` event."""
        scored = document_texts(documents, self.metadata_mode)
        ranking = self.core.rank(query, [s.text for s in scored], **self._rank_arguments(documents, top_n))
        dispatch_verdict(ranking, callbacks)
        return self._verdict(documents, scored, ranking)

    async def arerank_with_verdict(
        self, documents: Sequence[Document], query: str, top_n: int | None, callbacks: Callbacks = None
    ) -> RerankVerdict:
        """``rerank_with_verdict`` with the model in a worker thread, off the event loop."""
        scored = document_texts(documents, self.metadata_mode)
        ranking = await self.core.arank(query, [s.text for s in scored], **self._rank_arguments(documents, top_n))
        await adispatch_verdict(ranking, callbacks)
        return self._verdict(documents, scored, ranking)

    def rerank(
        self, documents: Sequence[Document], query: str, top_n: int | None, callbacks: Callbacks = None
    ) -> list[Document]:
        """New documents for ``query``, best first, at most ``top_n``."""
        return self.rerank_with_verdict(documents, query, top_n, callbacks)["documents"]

    async def arerank(
        self, documents: Sequence[Document], query: str, top_n: int | None, callbacks: Callbacks = None
    ) -> list[Document]:
        """``rerank`` with the model in a worker thread, off the event loop."""
        return (await self.arerank_with_verdict(documents, query, top_n, callbacks))["documents"]

    def __repr_args__(self) -> Any:
        return [(name, value) for name, value in super().__repr_args__() if name != "reranker"] + [
            ("reranker", repr(self.reranker))
        ]
