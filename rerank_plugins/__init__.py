"""rerank-plugins: fast, correct cross-encoder reranking for LangChain and LlamaIndex.

The core is framework-free (:class:`Reranker`); the adapters live in ``rerank_plugins.langchain``
and ``rerank_plugins.llama_index`` and need their optional extras.
"""

from rerank_plugins._version import __version__
from rerank_plugins.reranker import DEFAULT_MODEL, Reranker
from rerank_plugins.results import RankedResult, Ranking, ScoringStats

__all__ = ["DEFAULT_MODEL", "RankedResult", "Ranking", "Reranker", "ScoringStats", "__version__"]

