"""The key of a keyed ``rerank-plugins serve`` process, given as ``api_key=`` or ``$RERANK_PLUGINS_API_KEY``.

Finding 11: ``url=`` could not carry a key and ``to_dict()`` dropped a ``RemoteReranker(headers=...)``'s,
so a restored adapter got 401. The key is sent, never serialised or shown, and read from the
environment again by a restored ``RemoteReranker``, LangChain compressor or LlamaIndex postprocessor.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from langchain_core.documents import Document
from langchain_core.load import dumpd, dumps
from langchain_core.runnables import RunnableLambda
from llama_index.core.schema import NodeWithScore, TextNode

from rerank_plugins.langchain import RerankCompressor, RerankRetriever
from rerank_plugins.llama_index import RerankPostprocessor
from rerank_plugins.remote import RemoteReranker, RemoteRerankError
from tests.serving.servers import ServeProcess

pytestmark = pytest.mark.slow  # a real service process

KEY = "k-remote-2718"
ENV = "RERANK_PLUGINS_API_KEY"
QUERY = "cholesterol drugs"
DOCS = ["statins lower cholesterol", "malaria is spread by mosquitoes", "vitamin D and bone density"]


@pytest.fixture(scope="module")
def server(random_model: str) -> Iterator[ServeProcess]:
    with ServeProcess(random_model, "--api-key", KEY) as process:
        yield process


@pytest.fixture(autouse=True)
def no_key_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)


def shown_nowhere(*texts: str) -> bool:
    return not [text for text in texts if KEY in text]


@pytest.mark.slow
def test_the_client_sends_its_key_or_the_environment_s_and_never_shows_it(
    server: ServeProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    keyed = RemoteReranker(server.url, api_key=KEY)
    by_header = RemoteReranker(server.url, headers={"Authorization": f"Bearer {KEY}", "X-Trace": "t"})
    assert len(keyed.rank(QUERY, DOCS)) == len(asyncio.run(by_header.arank(QUERY, DOCS))) == 3
    with pytest.raises(RemoteRerankError, match=f"{server.url} answered 401.*pass api_key= or set {ENV}"):
        RemoteReranker(server.url).rank(QUERY, DOCS)
    assert by_header.options()["headers"] == {"X-Trace": "t"}
    assert shown_nowhere(*(repr(c) + json.dumps(c.options()) + c.model_name for c in (keyed, by_header)))
    monkeypatch.setenv(ENV, KEY)
    assert len(RemoteReranker(**keyed.options()).rank(QUERY, DOCS)) == 3  # restored: the key from the environment
    assert len(asyncio.run(RemoteReranker(server.url).arank(QUERY, DOCS))) == 3


def test_the_langchain_compressor_round_trips_and_finds_its_key_in_the_environment(
    server: ServeProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    documents = [Document(page_content=text) for text in DOCS]
    compressor = RerankCompressor(url=server.url, api_key=KEY, top_n=2)
    assert len(compressor.compress_documents(documents, QUERY)) == 2
    data = compressor.model_dump()
    retriever = RerankRetriever(
        base_retriever=RunnableLambda(lambda query: documents), url=server.url, api_key=KEY, k=2
    )
    assert len(retriever.invoke(QUERY)) == 2
    assert shown_nowhere(json.dumps(data), repr(compressor), dumps(compressor), json.dumps(dumpd(compressor)))
    assert shown_nowhere(
        repr(retriever), dumps(retriever), json.dumps(retriever.model_dump(exclude={"base_retriever"}))
    )
    with pytest.raises(RemoteRerankError, match="answered 401"):
        RerankCompressor(**data).compress_documents(documents, QUERY)
    monkeypatch.setenv(ENV, KEY)
    assert len(RerankCompressor(**data).compress_documents(documents, QUERY)) == 2


def test_the_llama_index_postprocessor_round_trips_and_finds_its_key_in_the_environment(
    server: ServeProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    nodes = [NodeWithScore(node=TextNode(text=text), score=0.5) for text in DOCS]
    shared = RemoteReranker(server.url, headers={"Authorization": f"Bearer {KEY}"})
    for postprocessor in (
        RerankPostprocessor(url=server.url, api_key=KEY, top_n=2),
        RerankPostprocessor(shared, top_n=2),
    ):
        assert len(postprocessor.postprocess_nodes(nodes, query_str=QUERY)) == 2
        data = postprocessor.to_dict()
        assert shown_nowhere(json.dumps(data), postprocessor.to_json(), repr(postprocessor))
        with pytest.raises(RemoteRerankError, match="answered 401"):
            RerankPostprocessor.from_dict(data).postprocess_nodes(nodes, query_str=QUERY)
        monkeypatch.setenv(ENV, KEY)
        assert len(RerankPostprocessor.from_dict(data).postprocess_nodes(nodes, query_str=QUERY)) == 2
        monkeypatch.delenv(ENV)


def test_a_key_needs_a_url_and_one_source_of_credentials() -> None:
    with pytest.raises(ValueError, match="api_key= is the key of a rerank service: pass its url= too"):
        RerankPostprocessor(api_key=KEY)
    with pytest.raises(ValueError, match="pass one of api_key=, user:password@ in the url, or an Authorization"):
        RemoteReranker("http://u:p@127.0.0.1:9", api_key=KEY)
    with pytest.raises(ValueError, match="either reranker= or model options") as raised:
        RerankCompressor(reranker=RemoteReranker("http://127.0.0.1:9"), api_key=KEY)
    assert KEY not in str(raised.value)
    with pytest.raises(ValueError, match="api_key must be a non-empty printable str") as raised:
        RemoteReranker("http://127.0.0.1:9", api_key=f" {KEY}\n")
    assert KEY not in str(raised.value)
