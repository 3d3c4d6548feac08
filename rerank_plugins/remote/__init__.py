"""A client for rerank services with the ``Reranker`` surface. Needs the ``remote`` extra (httpx)."""

from rerank_plugins.remote.client import RemoteReranker, RemoteRerankError

__all__ = ["RemoteRerankError", "RemoteReranker"]
