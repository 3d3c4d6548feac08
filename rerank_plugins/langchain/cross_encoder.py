"""``RerankCrossEncoder``: our core behind LangChain's ``BaseCrossEncoder`` interface."""

from __future__ import annotations

from typing import Any

from rerank_plugins.backend import RerankBackend
from rerank_plugins.reranker import Reranker

try:  # langchain-core >= 0.3.x carries the interface; older stacks had it in langchain-community
    from langchain_core.cross_encoders import BaseCrossEncoder
except ImportError:  # pragma: no cover - depends on the installed LangChain
    from langchain_community.cross_encoders import BaseCrossEncoder  # type: ignore[no-redef]

__all__ = ["RerankCrossEncoder"]


class RerankCrossEncoder(BaseCrossEncoder):
    """A ``BaseCrossEncoder`` for LangChain's stock ``CrossEncoderReranker``, scored by our fast core.

    Args:
        reranker: A ready ``Reranker`` or ``RemoteReranker``; when omitted one is built from ``model`` and ``options``.
        model: Hugging Face id or local directory of the cross-encoder.
        **options: Any ``Reranker`` keyword (device, precision, batch_size, max_length, ...).
    """

    def __init__(self, reranker: RerankBackend | None = None, *, model: str | None = None, **options: Any) -> None:
        if reranker is not None and (model is not None or options):
            raise ValueError("pass either reranker= or model options, not both")
        if reranker is None:
            reranker = Reranker(model, **options) if model is not None else Reranker(**options)
        self.reranker = reranker

    def score(self, text_pairs: list[tuple[str, str]]) -> list[float]:
        """Raw scores of (query, document) pairs, in input order."""
        return self.reranker.score_pairs(text_pairs)
