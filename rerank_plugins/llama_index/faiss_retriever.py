"""``FaissNodeRetriever``: our FAISS bi-encoder retriever as a LlamaIndex ``BaseRetriever``."""

from __future__ import annotations

import asyncio

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from rerank_plugins.retrieval import FaissRetriever
from rerank_plugins.validation import check_count

__all__ = ["FaissNodeRetriever"]


class FaissNodeRetriever(BaseRetriever):
    """Returns the ``similarity_top_k`` nearest nodes, scored by cosine similarity.

    Add a ``RerankPostprocessor`` in the query engine to rerank them.
    """

    def __init__(
        self, retriever: FaissRetriever, similarity_top_k: int = 4, callback_manager: CallbackManager | None = None
    ) -> None:
        check_count(similarity_top_k, "similarity_top_k", 1, error=ValueError)
        super().__init__(callback_manager=callback_manager)
        self.retriever = retriever
        self.similarity_top_k = similarity_top_k

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [
            NodeWithScore(node=TextNode(text=hit.text, id_=hit.id, metadata=hit.metadata), score=hit.score)
            for hit in self.retriever.search(query_bundle.query_str, k=self.similarity_top_k)
        ]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return await asyncio.to_thread(self._retrieve, query_bundle)
