"""``RerankService`` without an app or a socket: answers, admission, model names, ``/info`` and ``/health``.

The service runs over a real ``Reranker`` on the seeded random-weight model, so rankings are checked
against the library's own; everything HTTP (routes, middleware) is left to the service tests.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any

import pytest

from rerank_plugins import Reranker
from rerank_plugins.serving.admission import Refused
from rerank_plugins.serving.apis import Ask
from rerank_plugins.serving.guard import Message
from rerank_plugins.serving.limits import ServiceLimits
from rerank_plugins.serving.service import RERANK_PATHS, RerankService
from tests.serving.texts import CLAIM_DOCS

QUERY = "statins lower cholesterol"
DOCS = CLAIM_DOCS


@pytest.fixture(scope="module")
def core(random_model: str) -> Reranker:
    return Reranker(random_model, precision="fp32", max_length=64)


def body(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


@asynccontextmanager
async def started(service: RerankService) -> AsyncIterator[RerankService]:
    """``service`` started and warm (``/health`` ready) for the block, shut down after it."""
    await service.startup()
    try:
        for _ in range(600):
            if service.lifecycle.ready:
                break
            await asyncio.sleep(0.05)
        assert service.lifecycle.ready, "the service did not warm up in 30 s"
        yield service
    finally:
        await service.shutdown()


async def test_answer_ranks_like_the_reranker_in_each_shape(core: Reranker) -> None:
    expected = core.rank(QUERY, DOCS)
    async with started(RerankService(core, model_name="served")) as service:
        ours = await service.answer("/rerank", body(query=QUERY, documents=DOCS))
        cohere = await service.answer("/v2/rerank", body(query=QUERY, documents=DOCS, top_n=2), request_id="req-1")
        batches = service.batcher.batches
    assert ours["model"] == "served"
    assert [row["index"] for row in ours["results"]] == [r.index for r in expected]
    for row, result in zip(ours["results"], expected, strict=True):
        assert abs(row["score"] - result.score) < 1e-4
        assert abs(row["relevance_score"] - result.relevance_score) < 1e-5
    assert cohere["id"] == "req-1" and cohere["model"] == "served"
    assert [row["index"] for row in cohere["results"]] == [r.index for r in expected[:2]]
    assert cohere["usage"]["total_tokens"] == sum(core.token_cost(QUERY, DOCS).pair_tokens)
    assert batches >= 1  # scored through the batcher, not around it


async def test_answer_is_none_for_a_client_gone_before_or_while_it_waits(core: Reranker) -> None:
    async def gone() -> bool:
        return True

    async def disconnect() -> Message:
        return {"type": "http.disconnect"}

    slow = ServiceLimits(max_wait_ms=1000)  # the pass waits a second for company: the disconnect comes first
    async with started(RerankService(core, slow)) as service:
        before = await service.answer("/rerank", body(query=QUERY, documents=DOCS), is_gone=gone)
        abandoned_before = service.batcher.abandoned
        during = await service.answer("/rerank", body(query=QUERY, documents=DOCS), receive=disconnect)
        counts = service.batcher.abandoned, service.batcher.queued["requests"]
    assert before is None and abandoned_before == 0  # never queued
    assert during is None and counts == (1, 0)  # queued, then dropped with its client


async def test_answer_refuses_a_bad_idempotency_key_and_a_draining_service(core: Reranker) -> None:
    async with started(RerankService(core)) as service:
        with pytest.raises(Refused) as refused:
            await service.answer("/rerank", body(query=QUERY, documents=DOCS), idempotency_key="k" * 201)
        assert refused.value.status == 422 and "Idempotency-Key must be 1 to 200" in str(refused.value.detail)
        service.check_open()  # open while running
    with pytest.raises(Refused) as closed:
        service.check_open()
    assert closed.value.status == 503 and closed.value.headers == {"Retry-After": "1"}


def test_check_model_refuses_an_unknown_name_and_accepts_the_served_ones(core: Reranker) -> None:
    service = RerankService(core, model_name="served", aliases=["alias"])
    for accepted in ("served", "alias", None):
        service.check_model(Ask("rerank-plugins", QUERY, DOCS, model=accepted))
    with pytest.raises(Refused) as refused:
        service.check_model(Ask("cohere-v2", QUERY, DOCS, model="rerank-english-v3.0"))
    assert refused.value.status == 404
    assert refused.value.detail == (
        "model 'rerank-english-v3.0' is not served here; this service serves 'served' "
        "(start it with --served-model-name to accept other names)"
    )
    with pytest.raises(Refused) as long_name:
        service.check_model(Ask("cohere-v2", QUERY, DOCS, model="x" * 500))
    assert "x" * 80 + "..." in long_name.value.detail and "x" * 81 not in long_name.value.detail


async def test_answer_checks_the_model_before_any_scoring(core: Reranker) -> None:
    async with started(RerankService(core)) as service:
        with pytest.raises(Refused) as refused:
            await service.answer("/v2/rerank", body(query=QUERY, documents=DOCS, model="elsewhere"))
        assert refused.value.status == 404 and service.batcher.batches == 0


async def test_fit_refuses_requests_over_the_token_limits(core: Reranker) -> None:
    cost = sum(core.token_cost(QUERY, DOCS).pair_tokens)
    within = RerankService(core, ServiceLimits(max_request_tokens=cost))
    fitted = await within.fit(Ask("rerank-plugins", QUERY, DOCS))
    assert fitted.documents == DOCS and sum(fitted.cost.pair_tokens) == cost and fitted.warnings == []

    over = RerankService(core, ServiceLimits(max_request_tokens=cost - 1))
    with pytest.raises(Refused) as refused:
        await over.fit(Ask("rerank-plugins", QUERY, DOCS))
    assert refused.value.status == 413
    assert f"the request would run {cost} model tokens; the limit is {cost - 1} per request" in refused.value.detail

    short_queries = RerankService(core, ServiceLimits(max_query_tokens=2))
    with pytest.raises(Refused) as long_query:
        await short_queries.fit(Ask("rerank-plugins", QUERY, DOCS))
    tokens = core.query_tokens(QUERY)
    assert long_query.value.status == 413 and long_query.value.detail == (
        f"the query is {tokens} tokens; the limit is 2 tokens"
    )


async def test_fit_cuts_or_refuses_long_documents_as_the_request_asks(core: Reranker) -> None:
    service = RerankService(core)
    clipped = await service.fit(Ask("cohere-v2", QUERY, DOCS, max_tokens_per_doc=3))
    assert all(len(text) < len(original) for text, original in zip(clipped.documents, DOCS, strict=True))
    assert clipped.warnings == [f"{len(DOCS)} of {len(DOCS)} documents were cut to max_tokens_per_doc=3"]

    long = [DOCS[0], " ".join(DOCS * 4)]
    cut = await service.fit(Ask("rerank-plugins", QUERY, long))
    assert cut.warnings == ["1 of 2 documents were cut to fit the model's 64-token pairs"]
    with pytest.raises(Refused) as whole:
        await service.fit(Ask("tei", QUERY, long, truncate=False))
    assert whole.value.status == 413 and whole.value.detail.startswith("documents[1] is ")


async def test_health_follows_warming_ready_and_draining(core: Reranker) -> None:
    service = RerankService(core)
    warming = service.health()
    assert (warming.status, warming.body, warming.headers) == (
        503,
        {"status": "warming", "ready": False},
        {"Retry-After": "1"},
    )
    async with started(service):
        ready = service.health()
        assert ready.status == 200 and ready.headers == {}
        assert ready.body["status"] == "ok" and ready.body["ready"] is True and ready.body["uptime_seconds"] >= 0
    draining = service.health()
    assert draining.status == 503 and draining.body == {"status": "draining", "ready": False}


async def test_info_says_what_is_served_and_counts_the_work(core: Reranker) -> None:
    limits = ServiceLimits(max_documents=50)
    service = RerankService(core, limits, model_name="served", aliases=["b-alias", "a-alias"], keyed=True)
    before = service.info()
    assert before["model"] == "served" and before["aliases"] == ["a-alias", "b-alias"]
    assert before["api_key"] is True and before["ready"] is False
    assert list(before["apis"]) == list(RERANK_PATHS)
    assert before["limits"] == asdict(limits) and before["limits"]["max_documents"] == 50
    assert before["max_length"] == 64 and before["calibration"] is None
    assert before["batches_run"] == 0 and before["queued"] == {"requests": 0, "pairs": 0, "tokens": 0}
    assert RerankService(core).info()["api_key"] is False
    async with started(service):
        await service.answer("/rerank", body(query=QUERY, documents=DOCS))
        after = service.info()
    assert after["ready"] is True and after["batches_run"] >= 1
    assert after["tokens_per_second"] > 0
    assert "served" in service.startup_line() and "API key required" in service.startup_line()
