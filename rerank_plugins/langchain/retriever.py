"""``RerankRetriever``: any LangChain retriever, reranked (no langchain-classic needed)."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever, RetrieverLike
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from pydantic import ConfigDict, Field

from rerank_plugins.langchain.settings import LangChainRerankSettings
from rerank_plugins.langchain.verdict import RerankVerdict
from rerank_plugins.validation import check_top_n

__all__ = ["RerankRetriever"]

_VERDICTS: ContextVar[list[tuple[RerankRetriever, RerankVerdict]] | None] = ContextVar(
    "rerank_plugins_verdicts", default=None
)
"""Where a ``with_verdict`` call collects the verdicts of the retriever runs it starts: one list per call (so
concurrent calls never mix), shared with worker threads LangChain copies the context into."""


class RerankRetriever(LangChainRerankSettings, BaseRetriever):
    """Fetches candidates from ``base_retriever`` and returns the best ``k`` after reranking.

    ``k`` (alias ``top_n``) is a field and an ``invoke`` keyword: ``retriever.invoke(query, k=5)``.
    Other invoke keywords go to the base retriever. Each run sends the ``rerank_verdict`` custom event
    (P(any relevant), whether the core abstained) to its handlers; ``with_verdict()`` returns it with the
    documents.

    Example:
        >>> retriever = RerankRetriever(base_retriever=store.as_retriever(search_kwargs={"k": 50}),
        ...                             model="cross-encoder/ms-marco-MiniLM-L6-v2", k=5)  # doctest: +SKIP
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid", populate_by_name=True)

    base_retriever: RetrieverLike = Field(description="The retriever (or runnable) that fetches candidates.")
    top_n: int | None = Field(
        default=3, ge=1, validation_alias="k", description="Documents to return after reranking (k= works too)."
    )  # validation_alias: type checkers, with or without pydantic's plugin, see the parameter as top_n

    def _top_n(self, kwargs: dict[str, Any]) -> int | None:
        k, top_n = kwargs.pop("k", None), kwargs.pop("top_n", None)
        if k is not None and top_n is not None and k != top_n:
            raise ValueError(f"got k={k} and top_n={top_n}; pass one")
        return check_top_n(k if k is not None else top_n if top_n is not None else self.top_n)

    def _record(self, verdict: RerankVerdict) -> list[Document]:
        """Hand ``verdict`` to an enclosing ``with_verdict`` call, if any; the documents are the run's output."""
        collected = _VERDICTS.get()
        if collected is not None:
            collected.append((self, verdict))
        return verdict["documents"]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        top_n = self._top_n(kwargs)
        candidates = self.base_retriever.invoke(query, config={"callbacks": run_manager.get_child()}, **kwargs)
        return self._record(self.rerank_with_verdict(candidates, query, top_n, run_manager.get_child()))

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        top_n = self._top_n(kwargs)
        candidates = await self.base_retriever.ainvoke(query, config={"callbacks": run_manager.get_child()}, **kwargs)
        return self._record(await self.arerank_with_verdict(candidates, query, top_n, run_manager.get_child()))

    def _own(self, collected: list[tuple[RerankRetriever, RerankVerdict]]) -> RerankVerdict:
        """This retriever's verdict among those a ``with_verdict`` call collected (a base retriever may add its own)."""
        for retriever, verdict in reversed(collected):
            if retriever is self:
                return verdict
        raise RuntimeError("the retriever run ended without a verdict")  # pragma: no cover - every run records one

    def with_verdict(self, **invoke_kwargs: Any) -> Runnable[str, RerankVerdict]:
        """A runnable giving ``{"documents", "p_any_relevant", "abstained"}`` for a query, so a chain can tell
        "nothing relevant" (and how sure) from an empty list. ``invoke_kwargs`` (``k=5``) go to ``invoke``.

        Example:
            >>> chain = retriever.with_verdict() | RunnableLambda(
            ...     lambda v: v["documents"] if not v["abstained"] else "no answer in the sources")  # doctest: +SKIP
        """

        def run(query: str, config: RunnableConfig) -> RerankVerdict:
            collected: list[tuple[RerankRetriever, RerankVerdict]] = []
            token = _VERDICTS.set(collected)
            try:
                self.invoke(query, config, **invoke_kwargs)
            finally:
                _VERDICTS.reset(token)
            return self._own(collected)

        async def arun(query: str, config: RunnableConfig) -> RerankVerdict:
            collected: list[tuple[RerankRetriever, RerankVerdict]] = []
            token = _VERDICTS.set(collected)
            try:
                await self.ainvoke(query, config, **invoke_kwargs)
            finally:
                _VERDICTS.reset(token)
            return self._own(collected)

        return RunnableLambda(run, afunc=arun, name=f"{self.get_name()}WithVerdict")
