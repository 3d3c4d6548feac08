"""The rerank service and RemoteReranker on loopback: same answers as the local core, limits, faults, load."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from rerank_plugins import Reranker
from rerank_plugins.remote import RemoteReranker, RemoteRerankError
from rerank_plugins.serving import ServiceLimits, create_app
from rerank_plugins.serving.background import serve_in_background as running
from tests.serving.servers import free_port
from tests.serving.texts import CLAIM_DOCS


@pytest.fixture(scope="module")
def local(trained_model: str) -> Reranker:
    return Reranker(trained_model, precision="fp32")


@pytest.fixture(scope="module")
def service(local: Reranker) -> Iterator[str]:
    with running(create_app(local, ServiceLimits(max_documents=50, max_document_bytes=20_000))) as url:
        yield url


@pytest.fixture(scope="module")
def remote(service: str) -> RemoteReranker:
    return RemoteReranker(service, backoff=0.01)


def close(a: list[Any], b: list[Any]) -> bool:
    return [r.index for r in a] == [r.index for r in b] and all(
        abs(x.score - y.score) < 1e-4 and abs(x.relevance_score - y.relevance_score) < 1e-5
        for x, y in zip(a, b, strict=True)
    )


def test_rerank_route_answers_in_the_common_rerank_shape(service: str) -> None:
    body = {"query": "statins lower cholesterol", "documents": CLAIM_DOCS, "top_n": 2, "return_documents": True}
    answer = httpx.post(f"{service}/rerank", json=body).json()
    assert {row["index"] for row in answer["results"]} == {0, 2}
    first = answer["results"][0]
    assert first["document"]["text"] == CLAIM_DOCS[first["index"]] and answer["usage"] == {"pairs": 4}
    assert set(answer["results"][0]) >= {"index", "relevance_score", "score"}
    assert (
        "document" not in httpx.post(f"{service}/rerank", json={**body, "return_documents": False}).json()["results"][0]
    )
    assert httpx.get(f"{service}/health").json()["status"] == "ok"
    info = httpx.get(f"{service}/info").json()
    assert info["model"].endswith("minilm-l6-scifact-ce") and info["limits"]["max_documents"] == 50


@pytest.mark.slow
def test_remote_reranker_gives_the_local_rankings_and_scores(
    local: Reranker, remote: RemoteReranker, claim: str, scifact_slice: dict[str, str]
) -> None:
    documents = list(scifact_slice.values())[:30]
    assert close(remote.rank(claim, documents), local.rank(claim, documents))
    assert close(remote.rank(claim, documents, top_n=3, score_threshold=0.1), local.rank(claim, documents, 3, 0.1))
    fused = {"retrieval_scores": [1 - i / 30 for i in range(30)], "fusion_weight": 0.7}
    assert close(remote.rank(claim, documents, **fused), local.rank(claim, documents, **fused))
    many = (["statins", claim], [CLAIM_DOCS, documents[:5]])
    for a, b in zip(remote.rank_many(*many), local.rank_many(*many), strict=True):
        assert close(a, b)
    pairs = [("statins", CLAIM_DOCS[0]), (claim, documents[0]), ("statins", CLAIM_DOCS[1])]
    assert remote.score_pairs(pairs) == pytest.approx(local.score_pairs(pairs), abs=1e-4)
    assert asyncio.run(remote.ascore(claim, documents[:4])) == pytest.approx(
        local.score(claim, documents[:4]), abs=1e-4
    )
    assert remote.rank(claim, []) == [] and remote.score(claim, []) == []


@pytest.mark.slow
def test_both_adapters_rank_the_same_through_the_service(
    local: Reranker, remote: RemoteReranker, service: str, claim: str, scifact_slice: dict[str, str]
) -> None:
    from langchain_core.documents import Document
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from rerank_plugins.langchain import RerankCompressor
    from rerank_plugins.llama_index import RerankPostprocessor

    texts = list(scifact_slice.values())[:20]
    documents = [Document(page_content=text, metadata={"n": i}) for i, text in enumerate(texts)]
    nodes = [NodeWithScore(node=TextNode(text=text), score=0.5) for text in texts]

    def langchain_view(compressor: RerankCompressor) -> list[tuple[int, float]]:
        return [
            (d.metadata["n"], d.metadata["relevance_score"]) for d in compressor.compress_documents(documents, claim)
        ]

    def llama_view(result: list[NodeWithScore]) -> list[tuple[str, float]]:
        return [(n.node.get_content(), n.score or 0.0) for n in result]

    expected = langchain_view(RerankCompressor(reranker=local, top_n=5))
    for compressor in (RerankCompressor(reranker=remote, top_n=5), RerankCompressor(url=service, top_n=5)):
        got = langchain_view(compressor)
        assert [n for n, _ in got] == [n for n, _ in expected]
        assert [s for _, s in got] == pytest.approx([s for _, s in expected], abs=1e-5)
    remote_async = asyncio.run(RerankCompressor(url=service, top_n=5).acompress_documents(documents, claim))
    assert [d.metadata["n"] for d in remote_async] == [n for n, _ in expected]

    bundle = QueryBundle(claim)
    want = llama_view(RerankPostprocessor(reranker=local, top_n=5).postprocess_nodes(nodes, bundle))
    via_service = RerankPostprocessor(url=service, top_n=5)
    for got_nodes in (
        via_service.postprocess_nodes(nodes, bundle),
        asyncio.run(via_service.apostprocess_nodes(nodes, bundle)),
    ):
        got = llama_view(got_nodes)
        assert [t for t, _ in got] == [t for t, _ in want]
        assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-5)
    rebuilt = RerankPostprocessor.from_dict(via_service.to_dict())
    assert isinstance(rebuilt.core, RemoteReranker) and rebuilt.core.url == service
    with pytest.raises(ValueError, match="drop precision"):
        RerankCompressor(url=service, precision="fp32")


def test_oversize_and_malformed_requests_get_413_and_422(service: str, remote: RemoteReranker) -> None:
    too_many = httpx.post(f"{service}/rerank", json={"query": "q", "documents": ["d"] * 51})
    assert too_many.status_code == 413 and "51 documents exceed the limit of 50" in too_many.json()["detail"]
    too_big = httpx.post(f"{service}/rerank", json={"query": "q", "documents": ["ok", "é" * 10_001]})
    assert too_big.status_code == 413 and "documents[1] is 20002 bytes" in too_big.json()["detail"]
    for bad in ({"query": "q", "documents": "d"}, {"query": 3, "documents": ["d"]}, {"documents": ["d"]}):
        assert httpx.post(f"{service}/rerank", json=bad).status_code == 422
    assert httpx.post(f"{service}/rerank", json={"query": "q", "documents": ["d"], "top_n": 0}).status_code == 422
    empty = httpx.post(f"{service}/rerank", json={"query": " \n", "documents": ["d"]})
    assert empty.status_code == 422 and "the query is empty" in empty.json()["detail"]
    with pytest.raises(ValueError, match="413.*limit of 50"):
        RemoteReranker(service, max_documents_per_request=100).score("q", ["d"] * 60)
    assert len(RemoteReranker(service, max_documents_per_request=50).score("q", ["d"] * 60)) == 60


def test_the_client_retries_429_and_503_then_gives_a_clear_error() -> None:
    calls: list[float] = []

    def always_busy(request: httpx.Request) -> httpx.Response:
        calls.append(time.monotonic())
        return httpx.Response(503, headers={"Retry-After": "0.05"}, json={"detail": "busy"})

    client = RemoteReranker("http://rerank.test", max_retries=2, transport=httpx.MockTransport(always_busy))
    with pytest.raises(RemoteRerankError, match="did not answer after 3 attempts: HTTP 503"):
        client.score("q", ["d"])
    assert len(calls) == 3 and calls[1] - calls[0] >= 0.04  # Retry-After was honoured

    answers = iter(
        [
            httpx.Response(429),
            httpx.Response(200, json={"results": [{"index": 0, "score": 2.0, "relevance_score": 0.9}]}),
        ]
    )
    flaky = RemoteReranker("http://rerank.test", backoff=0.0, transport=httpx.MockTransport(lambda r: next(answers)))
    assert flaky.score("q", ["d"]) == [2.0]

    def tei(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[{"index": 1, "score": 0.0}, {"index": 0, "score": 3.0}])

    ranked = RemoteReranker("http://tei.test", api="tei", transport=httpx.MockTransport(tei)).rank("q", ["a", "b"])
    assert [(r.index, r.score, r.relevance_score) for r in ranked] == [
        (0, 3.0, pytest.approx(0.9526, abs=1e-4)),
        (1, 0.0, 0.5),
    ]

    async def async_busy() -> None:
        transport = httpx.MockTransport(always_busy)
        await RemoteReranker("http://rerank.test", max_retries=1, async_transport=transport).arank("q", ["d"])

    with pytest.raises(RemoteRerankError, match="after 2 attempts"):
        asyncio.run(async_busy())


@pytest.mark.slow
def test_a_killed_service_gives_the_client_a_clear_error_after_its_retries(random_model: str) -> None:
    port = free_port()
    command = [sys.executable, "-m", "rerank_plugins.cli", "serve", "--model", random_model, "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    client = RemoteReranker(f"http://127.0.0.1:{port}", max_retries=3, backoff=0.1, timeout=10)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                assert len(client.score("q", ["a", "b"])) == 2
                break
            except RemoteRerankError:
                assert process.poll() is None and time.monotonic() < deadline, process.stderr
        errors: list[BaseException] = []

        def keep_asking() -> None:
            try:
                while True:
                    client.score("query " * 50, ["document text " * 40] * 200)
            except BaseException as error:  # noqa: B036 - the test inspects whatever ended the loop
                errors.append(error)

        asker = threading.Thread(target=keep_asking)
        asker.start()
        time.sleep(1.0)
        os.kill(process.pid, signal.SIGKILL)
        asker.join(timeout=60)
        assert not asker.is_alive(), "the client hung after the service died"
    finally:
        process.kill()
        process.wait()
    assert len(errors) == 1 and isinstance(errors[0], RemoteRerankError)
    assert "did not answer after 4 attempts" in str(errors[0]) and f":{port}" in str(errors[0])


@pytest.mark.slow
def test_500_requests_from_32_clients_are_all_answered_correctly_and_merged(random_model: str) -> None:
    core = Reranker(random_model, precision="fp32", max_length=64)
    queries = [f"claim {i} about {topic}" for i, topic in enumerate(["statins", "malaria", "vitamin D", "sleep"] * 5)]
    documents = [[f"{doc} ({q[:8]})" for doc in CLAIM_DOCS] for q in queries]
    expected = {
        q: [r.index for r in ranking] for q, ranking in zip(queries, core.rank_many(queries, documents), strict=True)
    }
    with running(create_app(core, ServiceLimits(max_wait_ms=5))) as url:

        async def load() -> list[tuple[str, list[int]]]:
            semaphore = asyncio.Semaphore(32)
            async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=32)) as client:

                async def one(i: int) -> tuple[str, list[int]]:
                    query, docs = queries[i % len(queries)], documents[i % len(queries)]
                    async with semaphore:
                        answer = await client.post(f"{url}/rerank", json={"query": query, "documents": docs})
                    answer.raise_for_status()
                    return query, [row["index"] for row in answer.json()["results"]]

                return await asyncio.gather(*(one(i) for i in range(500)))

        answers = asyncio.run(load())
        batches = httpx.get(f"{url}/info").json()["batches_run"]
    assert len(answers) == 500 and all(order == expected[query] for query, order in answers)
    assert batches < 500  # concurrent requests shared forward passes


class _PoisonedReranker(Reranker):
    """A real core that fails any batch holding the query "poison"."""

    def pair_scores(self, pairs: Any) -> Any:
        if any(query == "poison" for query, _ in pairs):
            raise RuntimeError("poisoned batch")
        return super().pair_scores(pairs)


def test_one_failing_request_does_not_fail_the_others_in_its_batch(random_model: str) -> None:
    from rerank_plugins.serving import MicroBatcher

    async def scenario() -> list[Any]:
        batcher = MicroBatcher(_PoisonedReranker(random_model, precision="fp32"), ServiceLimits(max_wait_ms=200))
        await batcher.start()
        try:
            jobs = [batcher.rank("good", ["a", "b"]), batcher.rank("poison", ["c"]), batcher.rank("fine", ["d"])]
            return await asyncio.gather(*jobs, return_exceptions=True)
        finally:
            await batcher.stop()

    good, poisoned, fine = asyncio.run(scenario())
    assert [r.document for r in sorted(good, key=lambda r: r.index)] == ["a", "b"] and fine[0].document == "d"
    assert isinstance(poisoned, RuntimeError) and "poisoned" in str(poisoned)
