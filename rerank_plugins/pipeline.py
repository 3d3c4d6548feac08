"""Scoring chunk after chunk so that the device never waits on the host.

While the device runs chunk k, chunk k+1 is tokenised and planned (in a worker thread on an
accelerator, whose host is otherwise idle) and queued behind it; only then are chunk k's scores
waited for. At most two chunks are in flight, so memory stays bounded for any number of pairs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from typing import TypeVar

from rerank_plugins.encoding import Encoder
from rerank_plugins.inference import BatchPolicy, PendingScores, UnitScores, launch
from rerank_plugins.loading import LoadedModel
from rerank_plugins.units import ChunkPlan

__all__ = ["pipelined", "plan_ahead"]

Chunk = TypeVar("Chunk")


def plan_ahead(device: str, chunks: int) -> bool:
    """Plan in a worker thread on an accelerator; on the CPU the model already uses every core."""
    return chunks > 1 and device != "cpu"


def pipelined(
    loaded: LoadedModel,
    encoder: Encoder,
    chunks: Sequence[Chunk],
    plan: Callable[[Chunk], ChunkPlan],
    policy: BatchPolicy,
    on_planned: Callable[[Chunk, ChunkPlan], object] = lambda chunk, planned: None,
    on_batch: Callable[[int], object] | None = None,
) -> Iterator[tuple[ChunkPlan, UnitScores, float]]:
    """Each chunk's plan, unit scores and the wall seconds since the previous chunk's, in order.

    ``on_planned`` sees each plan before it is launched; ``on_batch`` each launched batch's unit count.
    """
    with (
        ThreadPoolExecutor(1, thread_name_prefix="rerank-plan")
        if plan_ahead(loaded.device, len(chunks))
        else nullcontext() as pool
    ):
        mark = time.perf_counter()
        current: Future[ChunkPlan] | ChunkPlan | None = plan(chunks[0]) if chunks else None
        pending: tuple[ChunkPlan, PendingScores] | None = None
        for position, chunk in enumerate(chunks):
            planned = current.result() if isinstance(current, Future) else current
            assert planned is not None
            following = chunks[position + 1] if position + 1 < len(chunks) else None
            if following is not None and pool is not None:
                current = pool.submit(plan, following)
            on_planned(chunk, planned)
            launched = launch(loaded, encoder, planned.units, policy, on_batch)
            if pending is not None:
                scores = pending[1].result()
                yield pending[0], scores, time.perf_counter() - mark
                mark = time.perf_counter()
            pending = (planned, launched)
            if following is not None and pool is None:
                current = plan(following)  # the device runs this chunk meanwhile
        if pending is not None:
            scores = pending[1].result()
            yield pending[0], scores, time.perf_counter() - mark
