"""``RerankRetriever``: any LangChain retriever, reranked (no langchain-classic needed)."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever, RetrieverLike
from pydantic import ConfigDict, Field, model_validator

from rerank_plugins.langchain.documents import RETRIEVAL_SCORE_KEY, arerank, rerank
from rerank_plugins.reranker import Reranker
from rerank_plugins.settings import RerankSettings
from rerank_plugins.validation import check_top_n

__all__ = ["RerankRetriever"]


class RerankRetriever(RerankSettings, BaseRetriever):
    """Fetches candidates from ``base_retriever`` and returns the best ``k`` after reranking.

    ``k`` (alias ``top_n``) is a field and an ``invoke`` keyword: ``retriever.invoke(query, k=5)``.
    Other invoke keywords go to the base retriever.

    Example:
        >>> retriever = RerankRetriever(base_retriever=store.as_retriever(search_kwargs={"k": 50}),
        ...                             model="cross-encoder/ms-marco-MiniLM-L6-v2", k=5)  # doctest: +SKIP
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid", populate_by_name=True)

    base_retriever: RetrieverLike = Field(description="The retriever (or runnable) that fetches candidates.")
    top_n: int | None = Field(3, ge=1, alias="k", description="Documents to return after reranking (alias k).")
    retrieval_score_key: str = Field(
        RETRIEVAL_SCORE_KEY, description="Metadata key holding each document's retrieval score, read for fusion."
    )
    reranker: Reranker | None = Field(
        None, exclude=True, description="A ready scoring core to share; built from the model options when omitted."
    )

    @model_validator(mode="after")
    def _build_core(self) -> RerankRetriever:
        self.reranker = self.resolve_reranker(self.reranker)
        return self

    @property
    def core(self) -> Reranker:
        """The scoring core in use."""
        assert self.reranker is not None  # set by the validator
        return self.reranker

    def _top_n(self, kwargs: dict[str, Any]) -> int | None:
        k, top_n = kwargs.pop("k", None), kwargs.pop("top_n", None)
        if k is not None and top_n is not None and k != top_n:
            raise ValueError(f"got k={k} and top_n={top_n}; pass one")
        return check_top_n(k if k is not None else top_n if top_n is not None else self.top_n)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        top_n = self._top_n(kwargs)
        candidates = self.base_retriever.invoke(query, config={"callbacks": run_manager.get_child()}, **kwargs)
        return rerank(self.core, candidates, query, self, self.retrieval_score_key, top_n)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        top_n = self._top_n(kwargs)
        candidates = await self.base_retriever.ainvoke(query, config={"callbacks": run_manager.get_child()}, **kwargs)
        return await arerank(self.core, candidates, query, self, self.retrieval_score_key, top_n)
