"""The FAISS retriever inside LangChain and LlamaIndex, reranked by the real SciFact model."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.retrievers import BaseRetriever
from langchain_tests.integration_tests import RetrieversIntegrationTests

from rerank_plugins import Reranker
from rerank_plugins.langchain import FaissDocumentRetriever, RerankRetriever
from rerank_plugins.retrieval import FaissRetriever
from tests.paths import SCIFACT


@pytest.fixture(scope="module")
def faiss_retriever(scifact_slice: dict[str, str], scifact_slice_vectors: Any) -> FaissRetriever:
    retriever = FaissRetriever()
    retriever.add(list(scifact_slice.values()), ids=list(scifact_slice), embeddings=scifact_slice_vectors)
    return retriever


@pytest.mark.slow
def test_langchain_faiss_then_rerank(faiss_retriever, trained_model, claim, relevant_id) -> None:
    relevant = relevant_id
    base = FaissDocumentRetriever(retriever=faiss_retriever, k=10)
    candidates = base.invoke(claim)
    assert len(candidates) == 10 and [d.id for d in candidates].index(relevant) > 0
    assert all(isinstance(d.metadata["retrieval_score"], float) for d in candidates)

    reranked = RerankRetriever(base_retriever=base, model=trained_model, precision="fp32", k=3).invoke(claim)
    assert reranked[0].id == relevant
    fused = RerankRetriever(base_retriever=base, model=trained_model, precision="fp32", k=3, fusion_weight=0.75)
    top = fused.invoke(claim)[0]
    retrieval = [d.metadata["retrieval_score"] for d in candidates]
    scaled = (top.metadata["retrieval_score"] - min(retrieval)) / (max(retrieval) - min(retrieval))
    assert top.id == relevant
    assert top.metadata["fused_score"] == pytest.approx(0.75 * 1.0 + 0.25 * scaled)


async def test_llama_index_faiss_then_rerank(faiss_retriever, trained_model, claim, relevant_id) -> None:
    from llama_index.core.llms import MockLLM
    from llama_index.core.query_engine import RetrieverQueryEngine

    from rerank_plugins.llama_index import FaissNodeRetriever, RerankPostprocessor

    relevant = relevant_id
    base = FaissNodeRetriever(faiss_retriever, similarity_top_k=10)
    nodes = await base.aretrieve(claim)
    assert len(nodes) == 10 and [n.node.node_id for n in nodes].index(relevant) > 0
    engine = RetrieverQueryEngine.from_args(
        retriever=base,
        node_postprocessors=[RerankPostprocessor(model=trained_model, precision="fp32", top_n=3)],
        llm=MockLLM(),
    )
    response = await engine.aquery(claim)
    assert response.source_nodes[0].node.node_id == relevant
    with pytest.raises(ValueError, match="similarity_top_k"):
        FaissNodeRetriever(faiss_retriever, similarity_top_k=0)


class TestFaissDocumentRetrieverStandard(RetrieversIntegrationTests):
    _shared: dict[str, Any] = {}

    @pytest.fixture(autouse=True)
    def _parts(self) -> None:
        if not self._shared:
            import itertools
            import json

            with open(SCIFACT / "corpus.jsonl", encoding="utf-8") as lines:
                rows = [json.loads(line) for line in itertools.islice(lines, 30)]
            self._shared["faiss"] = FaissRetriever.from_texts([r["text"] for r in rows], ids=[r["_id"] for r in rows])

    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return FaissDocumentRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"retriever": self._shared["faiss"]}

    @property
    def retriever_query_example(self) -> str:
        return "Vitamin B12 deficiency raises homocysteine."


def test_shared_core_between_adapters(trained_model: str) -> None:
    from rerank_plugins.langchain import RerankCompressor
    from rerank_plugins.llama_index import RerankPostprocessor

    core = Reranker(trained_model)
    assert RerankCompressor(reranker=core).core is core
    assert RerankPostprocessor(reranker=core).core is core


def test_from_index_is_the_langchain_retriever(faiss_retriever, claim) -> None:
    retriever = FaissDocumentRetriever.from_index(faiss_retriever, search_kwargs={"k": 3})
    assert isinstance(retriever, BaseRetriever) and retriever.k == 3
    documents = retriever.invoke(claim)
    assert [d.id for d in documents] == [hit.id for hit in faiss_retriever.search(claim, k=3)]
    assert FaissDocumentRetriever.from_index(faiss_retriever, k=5).k == 5
    with pytest.raises(TypeError, match="search_kwargs takes only 'k'"):
        FaissDocumentRetriever.from_index(faiss_retriever, search_kwargs={"filter": {}})
