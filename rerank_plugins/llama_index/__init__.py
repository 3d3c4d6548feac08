"""LlamaIndex integration: a reranking node postprocessor. Needs ``pip install "rerank-plugins[llamaindex]"``."""

from rerank_plugins._optional import require

require("llama_index.core", "llamaindex")

from rerank_plugins.llama_index.events import RerankVerdictEvent  # noqa: E402
from rerank_plugins.llama_index.faiss_retriever import FaissNodeRetriever  # noqa: E402
from rerank_plugins.llama_index.postprocessor import (  # noqa: E402
    P_ANY_RELEVANT_KEY,
    RETRIEVAL_SCORE_KEY,
    RerankPostprocessor,
)

__all__ = [
    "P_ANY_RELEVANT_KEY",
    "RETRIEVAL_SCORE_KEY",
    "FaissNodeRetriever",
    "RerankPostprocessor",
    "RerankVerdictEvent",
]
