"""Service limits and the micro-batcher's scheduling, without a server: fast logic tests.

The README's limits table is checked against ``ServiceLimits`` and ``rerank-plugins serve --help``;
the batcher runs over a fake scorer (pure scheduling logic), so its passes can be counted exactly.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import fields
from typing import Any

import pytest

from rerank_plugins.backend import PairScore, RerankBackend
from rerank_plugins.serving import MicroBatcher, Overloaded, ServiceLimits
from tests.paths import REPO


class _CountingScorer(RerankBackend):
    """Scores a pair by the length of its document and records each pass it was given."""

    model_name = "counting"

    def __init__(self) -> None:
        self.passes: list[list[tuple[str, str]]] = []

    def _score_pairs(self, pairs: list[tuple[str, str]]) -> list[PairScore]:
        self.passes.append(pairs)
        return [PairScore(float(len(text)), 0.5) for _, text in pairs]

    def options(self) -> dict[str, Any]:
        return {}


def test_the_readme_limits_table_matches_the_defaults_and_the_flags() -> None:
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("### Limits") :]
    rows = dict(re.findall(r"^\| `--([a-z-]+)` \| ([^|]+) \|", table, re.MULTILINE))
    defaults = {limit.name: limit.default for limit in fields(ServiceLimits) if limit.name != "micro_batching"}
    assert set(rows) == {name.replace("_", "-") for name in defaults}
    for name, default in defaults.items():
        shown = rows[name.replace("_", "-")]
        if default is None:
            assert shown.startswith("the longest query the model keeps whole")
        else:
            numbers = [float(n.replace(",", "")) for n in re.findall(r"[\d,]+(?:\.\d+)?", shown)]
            assert float(default) in numbers, (name, shown, default)


def test_limits_that_cannot_hold_one_request_are_refused() -> None:
    with pytest.raises(ValueError, match="max_request_tokens must not exceed max_queued_tokens"):
        ServiceLimits(max_request_tokens=10, max_queued_tokens=5)
    with pytest.raises(ValueError, match="max_body_bytes must be > 0"):
        ServiceLimits(max_body_bytes=0)
    with pytest.raises(TypeError, match="header_timeout_s must be a number"):
        ServiceLimits(header_timeout_s="10")  # type: ignore[arg-type]


def run_batcher(scorer: _CountingScorer, jobs: list[tuple[str, list[str], list[int]]], **options: Any) -> list[Any]:
    async def scenario() -> list[Any]:
        batcher = MicroBatcher(scorer, ServiceLimits(max_wait_ms=50, **options))
        await batcher.start()
        try:
            submitted = [batcher.submit(q, docs, costs) for q, docs, costs in jobs]
            return list(await asyncio.gather(*(batcher.result(job) for job in submitted)))
        finally:
            await batcher.stop()

    return asyncio.run(scenario())


def test_a_large_request_spans_passes_within_the_token_budget_and_small_ones_go_first() -> None:
    scorer = _CountingScorer()
    large = ("large", [f"doc {i}" for i in range(10)], [100] * 10)
    small = ("small", ["a", "bb"], [10, 10])
    rankings = run_batcher(scorer, [large, small], max_batch_tokens=300)
    assert [len(p) for p in scorer.passes] == [4, 3, 3, 2]  # 20 + 200 tokens, then 300, 300, 200
    assert [q for q, _ in scorer.passes[0]] == ["small", "small", "large", "large"]
    assert [r.index for r in rankings[1]] == [1, 0]  # the longer document scores higher here
    assert sorted(r.index for r in rankings[0]) == list(range(10))


def test_one_request_per_pass_without_micro_batching() -> None:
    scorer = _CountingScorer()
    run_batcher(scorer, [("a", ["x"], [1]), ("b", ["y"], [1]), ("c", ["z"], [1])], micro_batching=False)
    assert [[q for q, _ in p] for p in scorer.passes] == [["a"], ["b"], ["c"]]


def test_admission_refuses_past_each_queue_budget_with_a_backlog_estimate() -> None:
    async def scenario() -> list[str]:
        budgets = ServiceLimits(
            max_queue=2, max_queued_pairs=5, max_queued_tokens=100, max_documents=5, max_request_tokens=100
        )
        batcher = MicroBatcher(_CountingScorer(), budgets)
        await batcher.start()
        batcher._worker.cancel()  # type: ignore[union-attr]  # nothing is scored: the queue only fills
        batcher.tokens_per_second = 10.0
        reasons = []
        batcher.submit("q", ["a", "b"], [40, 40])
        for documents, costs in ((["c"] * 4, [1] * 4), (["d"], [30])):
            with pytest.raises(Overloaded) as refused:
                batcher.submit("q", documents, costs)
            reasons.append(f"{refused.value} / {refused.value.retry_after}")
        batcher.submit("q", ["e"], [10])
        with pytest.raises(Overloaded) as refused:
            batcher.submit("q", ["f"], [1])
        reasons.append(f"{refused.value} / {refused.value.retry_after}")
        return reasons

    assert asyncio.run(scenario()) == [
        "2 pairs are waiting / 8",  # 80 tokens at 10 tokens/s
        "80 tokens are waiting / 8",
        "2 requests are waiting / 9",
    ]


def test_a_job_whose_clients_have_all_gone_is_dropped_but_a_joined_one_is_kept() -> None:
    async def scenario() -> tuple[bool, bool, list[int]]:
        batcher = MicroBatcher(_CountingScorer(), ServiceLimits(max_wait_ms=0))
        await batcher.start()
        batcher._worker.cancel()  # type: ignore[union-attr]
        kept = batcher.submit("q", ["a"], [1], key="k", digest="d")
        again = batcher.submit("q", ["a"], [1], key="k", digest="d")
        gone = batcher.submit("q", ["b"], [1])
        batcher.release(gone)
        batcher.release(kept)
        return gone.done.cancelled(), again.done.cancelled(), [batcher.abandoned, batcher.queued["requests"]]

    dropped, joined_cancelled, counts = asyncio.run(scenario())
    assert dropped and not joined_cancelled and counts == [1, 1]
