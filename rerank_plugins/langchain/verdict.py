"""The reranker's "anything relevant?" verdict for LangChain: a result shape and a custom callback event.

Documents carry P(any relevant) in their metadata only when some are kept; the verdict reaches a chain
also when none are, as ``RerankRetriever.with_verdict()`` output and as the ``rerank_verdict`` custom
event that callback handlers and ``astream_events`` see.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, TypedDict

from langchain_core.callbacks import AsyncCallbackManager, BaseCallbackManager, CallbackManager, Callbacks
from langchain_core.documents import Document
from langchain_core.runnables import ensure_config
from langchain_core.runnables.config import get_async_callback_manager_for_config, get_callback_manager_for_config

from rerank_plugins.results import RankedResult

__all__ = ["VERDICT_EVENT", "RerankVerdict", "adispatch_verdict", "dispatch_verdict", "verdict", "verdict_data"]

logger = logging.getLogger(__name__)

VERDICT_EVENT = "rerank_verdict"
"""Name of the custom event: its data is ``{"p_any_relevant": float | None, "abstained": bool}``."""


class RerankVerdict(TypedDict):
    """The kept documents with the verdict on the whole candidate list."""

    documents: list[Document]
    p_any_relevant: float | None
    """P(at least one candidate is relevant) with calibrated scores, before the cut; ``None`` uncalibrated."""
    abstained: bool
    """Whether the calibration's "nothing relevant" rule emptied the result (``abstain=True``)."""


def verdict_data(ranking: Sequence[RankedResult]) -> dict[str, Any]:
    """The event's data: the verdict of one query's ranking (a plain list has none to give)."""
    return {
        "p_any_relevant": getattr(ranking, "p_any_relevant", None),
        "abstained": bool(getattr(ranking, "abstained", False)),
    }


def verdict(documents: list[Document], ranking: Sequence[RankedResult]) -> RerankVerdict:
    """The kept ``documents`` with their ranking's verdict."""
    data = verdict_data(ranking)
    return RerankVerdict(documents=documents, p_any_relevant=data["p_any_relevant"], abstained=data["abstained"])


def _manager(callbacks: Callbacks, asynchronous: bool) -> BaseCallbackManager | None:
    """The callback manager of the run the verdict belongs to: ``callbacks`` when it is one (a retriever's
    child manager), else the enclosing runnable's; ``None`` outside any run, where there is nothing to attach
    an event to (``dispatch_custom_event`` would raise)."""
    if isinstance(callbacks, BaseCallbackManager):
        manager = callbacks
    else:
        config = ensure_config()  # the enclosing run's config, when called inside one
        manager = (get_async_callback_manager_for_config if asynchronous else get_callback_manager_for_config)(config)
    if manager.parent_run_id is None:
        logger.debug("no LangChain run to attach the %s event to: not dispatched", VERDICT_EVENT)
        return None
    return manager


def dispatch_verdict(ranking: Sequence[RankedResult], callbacks: Callbacks = None) -> None:
    """Send the verdict event to the handlers of the current run (none outside a run)."""
    manager = _manager(callbacks, asynchronous=False)
    if isinstance(manager, CallbackManager):
        manager.on_custom_event(VERDICT_EVENT, verdict_data(ranking), run_id=manager.parent_run_id)
    elif manager is not None:
        logger.debug("an async callback manager in a sync call: the %s event is not dispatched", VERDICT_EVENT)


async def adispatch_verdict(ranking: Sequence[RankedResult], callbacks: Callbacks = None) -> None:
    """``dispatch_verdict`` for async calls: async handlers are awaited."""
    manager = _manager(callbacks, asynchronous=True)
    if isinstance(manager, AsyncCallbackManager):
        await manager.on_custom_event(VERDICT_EVENT, verdict_data(ranking), run_id=manager.parent_run_id)
    elif isinstance(manager, CallbackManager):
        manager.on_custom_event(VERDICT_EVENT, verdict_data(ranking), run_id=manager.parent_run_id)
