"""``RerankVerdictEvent``: the reranker's "anything relevant?" verdict as a LlamaIndex instrumentation event."""

from __future__ import annotations

from collections.abc import Sequence

from llama_index.core.bridge.pydantic import ConfigDict
from llama_index.core.instrumentation.events import BaseEvent

from rerank_plugins.results import RankedResult

__all__ = ["RerankVerdictEvent"]


class RerankVerdictEvent(BaseEvent):
    """Sent by ``RerankPostprocessor`` on every call, after ranking: a handler on the root dispatcher learns
    how sure the reranker is that anything is relevant even when no node is kept (the nodes carry it only
    when some are).

    Attributes:
        p_any_relevant: P(at least one candidate is relevant) with calibrated scores, before ``score_threshold``
            and ``top_n`` cut the list; ``None`` when the scores are not calibrated.
        abstained: Whether the calibration's "nothing relevant" rule emptied the result (``abstain=True``).
        kept: Nodes returned.
        candidates: Nodes ranked.
        model_name: The reranking model.
    """

    model_config = ConfigDict(protected_namespaces=("pydantic_model_",))
    p_any_relevant: float | None
    abstained: bool
    kept: int
    candidates: int
    model_name: str

    @classmethod
    def class_name(cls) -> str:
        """Class name."""
        return "RerankVerdictEvent"

    @classmethod
    def of(cls, ranking: Sequence[RankedResult], candidates: int, model_name: str) -> RerankVerdictEvent:
        """The event for one query's ranking of ``candidates`` nodes (a plain list has no verdict to give)."""
        return cls(
            p_any_relevant=getattr(ranking, "p_any_relevant", None),
            abstained=getattr(ranking, "abstained", False),
            kept=len(ranking),
            candidates=candidates,
            model_name=model_name,
        )
