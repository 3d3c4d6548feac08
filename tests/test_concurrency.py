"""One shared model, many callers: threads and asyncio tasks all get their own correct results."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from rerank_plugins import Reranker


@pytest.fixture(scope="module")
def workload(scifact_corpus: dict[str, str], scifact_queries: dict[str, str]) -> list[tuple[str, list[str]]]:
    texts = list(scifact_corpus.values())
    queries = list(scifact_queries.values())
    return [(queries[i], texts[i * 3 : i * 3 + 6 + i % 5]) for i in range(16)]


@pytest.mark.slow
def test_eight_threads_on_one_instance_match_sequential(trained_model: str, workload) -> None:
    reranker = Reranker(trained_model, precision="fp32", batch_size=4)
    expected = [reranker.score(query, docs) for query, docs in workload]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda item: reranker.score(*item), workload * 2))
    assert results == expected * 2


@pytest.mark.slow
async def test_concurrent_async_calls_match_sequential(trained_model: str, workload) -> None:
    reranker = Reranker(trained_model, precision="fp32")
    expected = [reranker.rank(query, docs, top_n=3) for query, docs in workload]
    results = await asyncio.gather(*(reranker.arank(query, docs, top_n=3) for query, docs in workload))
    assert [[(r.index, round(r.score, 4)) for r in ranking] for ranking in results] == [
        [(r.index, round(r.score, 4)) for r in ranking] for ranking in expected
    ]


async def test_async_scoring_does_not_block_the_event_loop(trained_model: str, workload) -> None:
    reranker = Reranker(trained_model, precision="fp32").load()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    await reranker.ascore(workload[0][0], [doc for _, docs in workload for doc in docs])
    task.cancel()
    assert ticks > 5
