"""LangChain integration: a reranking document compressor, a reranking retriever, a cross-encoder scorer.

Needs ``pip install "rerank-plugins[langchain]"``.
"""

from rerank_plugins._optional import require

require("langchain_core", "langchain")

from rerank_plugins.langchain.compressor import RerankCompressor  # noqa: E402
from rerank_plugins.langchain.cross_encoder import RerankCrossEncoder  # noqa: E402
from rerank_plugins.langchain.documents import (  # noqa: E402
    FUSED_SCORE_KEY,
    P_ANY_RELEVANT_KEY,
    RELEVANCE_SCORE_KEY,
    RERANK_SCORE_KEY,
    RETRIEVAL_RANK_KEY,
    RETRIEVAL_SCORE_KEY,
    TRUNCATED_TOKENS_KEY,
    WINDOWS_KEY,
)
from rerank_plugins.langchain.faiss_retriever import FaissDocumentRetriever  # noqa: E402
from rerank_plugins.langchain.retriever import RerankRetriever  # noqa: E402
from rerank_plugins.langchain.scored_store import ScoredVectorStoreRetriever  # noqa: E402
from rerank_plugins.langchain.verdict import VERDICT_EVENT, RerankVerdict  # noqa: E402

__all__ = [
    "FUSED_SCORE_KEY",
    "FaissDocumentRetriever",
    "P_ANY_RELEVANT_KEY",
    "RELEVANCE_SCORE_KEY",
    "RETRIEVAL_SCORE_KEY",
    "RERANK_SCORE_KEY",
    "RETRIEVAL_RANK_KEY",
    "TRUNCATED_TOKENS_KEY",
    "VERDICT_EVENT",
    "WINDOWS_KEY",
    "RerankCompressor",
    "RerankCrossEncoder",
    "RerankRetriever",
    "RerankVerdict",
    "ScoredVectorStoreRetriever",
]
