"""Bi-encoder retrieval over FAISS: the candidate stage in front of the reranker. Needs the ``faiss`` extra."""

from rerank_plugins.retrieval.embedder import DEFAULT_BI_ENCODER, default_bi_encoder
from rerank_plugins.retrieval.faiss_retriever import FaissRetriever, SearchHit

__all__ = ["DEFAULT_BI_ENCODER", "FaissRetriever", "SearchHit", "default_bi_encoder"]
