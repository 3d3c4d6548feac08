"""Official rerank clients no one here wrote, pointed at a real ``rerank-plugins serve`` process.

The Cohere SDK (v1 and v2), LangChain's ``CohereRerank`` in a ``ContextualCompressionRetriever``,
LlamaIndex's Cohere, Jina and TEI postprocessors in real query engines, and the Voyage client: each
must give the local ``Reranker``'s order, with scores within 1e-4 (fp32), through an API key.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator

import cohere
import httpx
import pytest
import voyageai
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_cohere import CohereRerank as LangChainCohereRerank
from llama_index.core import VectorStoreIndex
from llama_index.core.llms import MockLLM
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import TextNode
from llama_index.embeddings.huggingface import HuggingFaceEmbedding
from llama_index.postprocessor.cohere_rerank import CohereRerank
from llama_index.postprocessor.jinaai_rerank import JinaRerank
from llama_index.postprocessor.tei_rerank import TextEmbeddingInference

from rerank_plugins import Reranker
from tests.langchain_parts import vector_store
from tests.paths import REPO
from tests.serving.servers import ServeProcess

KEY = "test-key-7f3a"
COHERE_MODEL, JINA_MODEL, VOYAGE_MODEL = "rerank-english-v3.0", "jina-reranker-v1-base-en", "rerank-2"
TOP = 3
TESTS_OF_CLIENTS = ("test_service_clients.py", "test_service_apis.py", "test_serving.py")


@pytest.fixture(scope="module")
def server(trained_model: str) -> Iterator[ServeProcess]:
    names = [arg for name in (COHERE_MODEL, JINA_MODEL, VOYAGE_MODEL) for arg in ("--served-model-name", name)]
    with ServeProcess(trained_model, *names, "--api-key", KEY) as process:
        yield process


@pytest.fixture(scope="module")
def texts(scifact_slice: dict[str, str], relevant_id: str) -> dict[str, str]:
    """40 SciFact abstracts, the claim's relevant one among them."""
    ids = [relevant_id, *[doc_id for doc_id in list(scifact_slice)[:39] if doc_id != relevant_id]]
    return {doc_id: scifact_slice[doc_id] for doc_id in ids}


@pytest.fixture(scope="module")
def index(bi_encoder_path: str, texts: dict[str, str]) -> VectorStoreIndex:
    embed_model = HuggingFaceEmbedding(model_name=bi_encoder_path, device="cpu")
    return VectorStoreIndex(
        [TextNode(text=text, id_=doc_id) for doc_id, text in texts.items()], embed_model=embed_model
    )


def expect(core: Reranker, query: str, documents: list[str], top_n: int) -> tuple[list[int], list[float]]:
    """The local core's top ``top_n`` (indices) and their relevance scores."""
    ranked = core.rank(query, documents, top_n=top_n)
    return [result.index for result in ranked], [result.relevance_score for result in ranked]


def same(scores: list[float], expected: list[float]) -> bool:
    return len(scores) == len(expected) and all(abs(a - b) <= 1e-4 for a, b in zip(scores, expected, strict=True))


@pytest.mark.slow
def test_cohere_sdk_v2_and_v1(server: ServeProcess, core: Reranker, claim: str, texts: dict[str, str]) -> None:
    documents = list(texts.values())
    order, scores = expect(core, claim, documents, TOP)

    answer = cohere.ClientV2(api_key=KEY, base_url=server.url).rerank(
        model=COHERE_MODEL, query=claim, documents=documents, top_n=TOP
    )
    assert [row.index for row in answer.results] == order and order[0] == 0  # the relevant abstract first
    assert same([row.relevance_score for row in answer.results], scores)

    old = cohere.Client(api_key=KEY, base_url=server.url).rerank(
        model=COHERE_MODEL, query=claim, documents=documents, top_n=TOP, return_documents=True
    )
    assert [row.index for row in old.results] == order
    assert same([row.relevance_score for row in old.results], scores)
    assert [row.document.text for row in old.results if row.document] == [documents[i] for i in order]


def test_cohere_sdk_errors_name_the_problem(server: ServeProcess, claim: str) -> None:
    with pytest.raises(cohere.errors.UnauthorizedError):
        cohere.ClientV2(api_key="wrong", base_url=server.url).rerank(model=COHERE_MODEL, query=claim, documents=["a"])
    with pytest.raises(cohere.errors.NotFoundError, match="is not served here"):
        cohere.ClientV2(api_key=KEY, base_url=server.url).rerank(model="rerank-v9", query=claim, documents=["a"])


def test_langchain_cohere_rerank_in_a_compression_retriever(
    server: ServeProcess, core: Reranker, bi_encoder_path: str, claim: str, texts: dict[str, str], relevant_id: str
) -> None:
    base = vector_store(bi_encoder_path, texts).as_retriever(search_kwargs={"k": 10})
    compressor = LangChainCohereRerank(cohere_api_key=KEY, base_url=server.url, model=COHERE_MODEL, top_n=TOP)
    retriever = ContextualCompressionRetriever(base_compressor=compressor, base_retriever=base)

    candidates = base.invoke(claim)
    kept = retriever.invoke(claim)
    order, scores = expect(core, claim, [doc.page_content for doc in candidates], TOP)
    assert [doc.metadata["doc_id"] for doc in kept] == [candidates[i].metadata["doc_id"] for i in order]
    assert kept[0].metadata["doc_id"] == relevant_id
    assert same([doc.metadata["relevance_score"] for doc in kept], scores)


@pytest.mark.slow
@pytest.mark.parametrize("client", ["cohere", "jina", "tei"])
def test_llama_index_postprocessors_in_a_query_engine(
    client: str, server: ServeProcess, core: Reranker, index: VectorStoreIndex, claim: str, relevant_id: str
) -> None:
    postprocessor: BaseNodePostprocessor = {
        "cohere": lambda: CohereRerank(top_n=TOP, model=COHERE_MODEL, api_key=KEY, base_url=server.url),
        "jina": lambda: JinaRerank(top_n=TOP, model=JINA_MODEL, api_key=KEY, base_url=f"{server.url}/v1"),
        "tei": lambda: TextEmbeddingInference(top_n=TOP, base_url=server.url, auth_token=f"Bearer {KEY}"),
    }[client]()
    retriever = index.as_retriever(similarity_top_k=10)
    engine = RetrieverQueryEngine.from_args(retriever=retriever, node_postprocessors=[postprocessor], llm=MockLLM())

    candidates = retriever.retrieve(claim)
    kept = engine.query(claim).source_nodes
    order, scores = expect(core, claim, [node.node.get_content() for node in candidates], TOP)
    assert [node.node.node_id for node in kept] == [candidates[i].node.node_id for i in order]
    assert kept[0].node.node_id == relevant_id
    assert same([float(node.score or 0.0) for node in kept], scores)


@pytest.mark.slow
def test_voyage_client(server: ServeProcess, core: Reranker, claim: str, texts: dict[str, str]) -> None:
    documents = list(texts.values())
    order, scores = expect(core, claim, documents, TOP)
    answer = voyageai.Client(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0).rerank(
        claim, documents, model=VOYAGE_MODEL, top_k=TOP
    )
    assert [row.index for row in answer.results] == order
    assert same([row.relevance_score for row in answer.results], scores)
    assert [row.document for row in answer.results] == [documents[i] for i in order]
    assert answer.total_tokens > len(documents) * 100  # long abstracts: real token counts, not pairs


def test_the_ready_line_the_access_log_and_no_server_path(server: ServeProcess, trained_model: str) -> None:
    headers = {"Authorization": f"Bearer {KEY}", "X-Request-Id": "from-the-test"}
    info = httpx.get(f"{server.url}/info", headers=headers).json()
    for _ in range(100):  # the access line is written just after the answer is sent
        log = server.log()
        if "id=from-the-test" in log:
            break
        time.sleep(0.05)
    ready = f"rerank-plugins ready at http://127.0.0.1:{server.port}: model {COHERE_MODEL} on cpu (fp32, torch)"
    assert ready in log and "API key required" in log and "max_batch_tokens=32768" in log
    assert '"GET /info" 200' in log and "id=from-the-test" in log
    assert KEY not in log
    assert info["model"] == COHERE_MODEL and info["aliases"] == sorted([JINA_MODEL, VOYAGE_MODEL])
    assert trained_model not in json.dumps(info) and os.path.dirname(trained_model) not in json.dumps(info)


def test_the_readme_api_table_names_only_endpoints_served_and_clients_tested() -> None:
    from rerank_plugins.serving.app import RERANK_PATHS

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("### One service, the common rerank APIs", 1)[1].split("\n- ", 1)[0]
    rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| ") and "---" not in line][1:]
    tests = "".join((REPO / "tests" / "serving" / name).read_text() for name in TESTS_OF_CLIENTS)
    assert len(rows) == 6
    for api, endpoint, _, clients in rows:
        assert endpoint.strip("`").split()[1] in RERANK_PATHS, api
        for call in re.findall(r"`([\w.]+)\(", clients):
            assert f"{call.rsplit('.', 1)[-1]}(" in tests, f"the README names {call} for {api}, but no test runs it"
