"""``RerankRetriever``: any LangChain retriever, reranked (no langchain-classic needed)."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever, RetrieverLike
from pydantic import ConfigDict, Field

from rerank_plugins.langchain.settings import LangChainRerankSettings
from rerank_plugins.validation import check_top_n

__all__ = ["RerankRetriever"]


class RerankRetriever(LangChainRerankSettings, BaseRetriever):
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
        return self.rerank(candidates, query, top_n)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        top_n = self._top_n(kwargs)
        candidates = await self.base_retriever.ainvoke(query, config={"callbacks": run_manager.get_child()}, **kwargs)
        return await self.arerank(candidates, query, top_n)
