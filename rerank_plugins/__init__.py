"""rerank-plugins: fast, correct cross-encoder reranking for LangChain and LlamaIndex.

The core is framework-free (:class:`Reranker`); the adapters live in ``rerank_plugins.langchain``
and ``rerank_plugins.llama_index`` and need their optional extras. Names load on first use (PEP 562),
so ``import rerank_plugins`` costs only what is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rerank_plugins._version import __version__

if TYPE_CHECKING:
    from rerank_plugins.reranker import DEFAULT_MODEL, Reranker
    from rerank_plugins.results import RankedResult, Ranking, ScoringStats

__all__ = ["DEFAULT_MODEL", "RankedResult", "Ranking", "Reranker", "ScoringStats", "__version__"]

_LAZY = {
    "DEFAULT_MODEL": "rerank_plugins.reranker",
    "Reranker": "rerank_plugins.reranker",
    "RankedResult": "rerank_plugins.results",
    "Ranking": "rerank_plugins.results",
    "ScoringStats": "rerank_plugins.results",
}


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
