"""Dynamic micro-batching: requests that arrive within a few milliseconds share one forward pass."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from rerank_plugins.reranker import Reranker
from rerank_plugins.results import RankedResult

__all__ = ["MicroBatcher", "Overloaded"]

logger = logging.getLogger(__name__)


class Overloaded(RuntimeError):
    """The queue of waiting requests is full: the caller should retry later (HTTP 503)."""


@dataclass
class _Job:
    query: str
    documents: list[str]
    done: asyncio.Future[list[RankedResult]] = field(repr=False)


class MicroBatcher:
    """Queues rank requests and runs them through ``Reranker.rank_many`` together.

    One worker takes the first waiting request, then gathers more for up to ``max_wait_ms`` or until
    ``max_batch_pairs`` pairs are waiting, and scores them all in one length-sorted pass (in a worker
    thread, so the event loop keeps accepting requests). At most ``max_queue`` requests wait; more get
    :class:`Overloaded` at once instead of a hang. ``enabled=False`` runs one request per pass.
    """

    def __init__(
        self,
        reranker: Reranker,
        *,
        max_wait_ms: float = 5.0,
        max_batch_pairs: int = 512,
        max_queue: int = 256,
        enabled: bool = True,
    ) -> None:
        if max_wait_ms < 0 or max_batch_pairs < 1 or max_queue < 1:
            raise ValueError("max_wait_ms must be >= 0, max_batch_pairs and max_queue >= 1")
        self.reranker = reranker
        self.max_wait = max_wait_ms / 1000
        self.max_batch_pairs = max_batch_pairs
        self.max_queue = max_queue
        self.enabled = enabled
        self.batches = 0
        self._queue: asyncio.Queue[_Job] | None = None
        self._worker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue(self.max_queue)
        self._worker = asyncio.create_task(self._work(self._queue))

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._worker = None

    async def rank(self, query: str, documents: list[str]) -> list[RankedResult]:
        """All of ``documents`` ranked for ``query`` (no cut), once a pass that includes them has run."""
        if self._queue is None:
            raise RuntimeError("MicroBatcher.start() has not been awaited")
        job = _Job(query, documents, asyncio.get_running_loop().create_future())
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            raise Overloaded(f"{self.max_queue} requests are already waiting") from None
        return await job.done

    async def _gather(self, queue: asyncio.Queue[_Job]) -> list[_Job]:
        batch = [await queue.get()]
        pairs = len(batch[0].documents)
        if not self.enabled:
            return batch
        deadline = asyncio.get_running_loop().time() + self.max_wait
        while pairs < self.max_batch_pairs:
            if queue.empty():
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
            else:
                job = queue.get_nowait()
            batch.append(job)
            pairs += len(job.documents)
        return batch

    async def _score(self, batch: list[_Job]) -> None:
        try:
            rankings = await asyncio.to_thread(
                self.reranker.rank_many, [job.query for job in batch], [job.documents for job in batch]
            )
        except Exception as error:
            if len(batch) > 1:  # one bad request must not fail the others: score each on its own
                logger.warning("a batch of %d requests failed (%s); scoring them one by one", len(batch), error)
                for job in batch:
                    await self._score([job])
                return
            logger.exception("scoring a request failed")
            if not batch[0].done.done():
                batch[0].done.set_exception(error)
            return
        self.batches += 1
        for job, ranking in zip(batch, rankings, strict=True):
            if not job.done.done():  # the client may have gone away
                job.done.set_result(ranking)

    async def _work(self, queue: asyncio.Queue[_Job]) -> None:
        while True:
            await self._score(await self._gather(queue))
