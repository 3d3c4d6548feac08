"""The metadata keys the LangChain and LlamaIndex adapters write (and read), defined once and framework-free.

Each adapter is an optional extra and never imports the other, so both import their keys from here; both
write one thing under one key.
"""

from __future__ import annotations

__all__ = [
    "DOCUMENT_ID_KEY",
    "FUSED_SCORE_KEY",
    "P_ANY_RELEVANT_KEY",
    "RELEVANCE_SCORE_KEY",
    "RERANK_SCORE_KEY",
    "RETRIEVAL_RANK_KEY",
    "RETRIEVAL_SCORE_KEY",
    "SPAN_KEY",
    "TEXT_LENGTH_KEY",
    "TRUNCATED_TOKENS_KEY",
    "WINDOWS_KEY",
]

RELEVANCE_SCORE_KEY = "relevance_score"
"""The 0-1 relevance: LangChain always (its own rerankers' key); LlamaIndex with fusion on (node score fused)."""
RERANK_SCORE_KEY = "rerank_score"
"""The cross-encoder's raw score (both adapters)."""
RETRIEVAL_RANK_KEY = "retrieval_rank"
"""The 1-based rank before reranking, the document's position in the input (LangChain)."""
RETRIEVAL_SCORE_KEY = "retrieval_score"
"""Retrieval score: LangChain fusion reads it (its retrievers write it); LlamaIndex's keep_retrieval_score writes it."""
FUSED_SCORE_KEY = "fused_score"
"""The blended score, with fusion on (both adapters; in LlamaIndex it is also the node's score)."""
P_ANY_RELEVANT_KEY = "rerank_p_any_relevant"
"""P(at least one candidate is relevant) with calibrated scores (both adapters)."""
TRUNCATED_TOKENS_KEY = "rerank_truncated_tokens"
"""Tokens of the text the model did not see ("truncate" mode; 0 when read whole), in both adapters."""
WINDOWS_KEY = "rerank_windows"
"""Windows the text was scored in ("window" mode; 1 otherwise), in both adapters."""
SPAN_KEY = "rerank_span"
"""[start, end] with compress="passage": the characters of the whole text (page_content, node text) now held."""
TEXT_LENGTH_KEY = "rerank_text_length"
"""The whole text's length in characters (``page_content``, node text), with compress="passage" (both adapters)."""
DOCUMENT_ID_KEY = "rerank_document_id"
"""The whole document's id, with compress="passage" (LangChain; the passage keeps it as its own ``id`` too)."""
