"""Dynamic micro-batching under budgets: requests share passes, large ones are split, abandoned work stops.

Work is admitted only within budgets of waiting requests, pairs and model tokens, so memory and
latency stay bounded under any mix; beyond them the caller gets :class:`Overloaded` with a retry
estimate from the real backlog. Each pass takes pairs up to a pair and a token budget, so a large
request spans several passes, requests that fit one pass go ahead of the rest of a
large one, and work whose every client has gone stops at the next pass boundary.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from rerank_plugins.backend import PairScore, RerankBackend, rank_scored
from rerank_plugins.results import RankedResult
from rerank_plugins.serving.limits import ServiceLimits

__all__ = ["Job", "MicroBatcher", "Overloaded"]

logger = logging.getLogger(__name__)

MIN_RETRY_AFTER = 1
MAX_RETRY_AFTER = 120


class Overloaded(RuntimeError):
    """Admitting the request would overflow a queue budget: retry after ``retry_after`` seconds (HTTP 503)."""

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class IdempotencyConflict(ValueError):
    """An ``Idempotency-Key`` still in flight was sent again with a different request (HTTP 422)."""


@dataclass(eq=False)
class Job:
    """One request's documents, scored over one or more passes; shared by every retry with its key."""

    query: str
    documents: list[str]
    costs: list[int]
    done: asyncio.Future[list[RankedResult]] = field(repr=False)
    key: str | None = None
    digest: str | None = None
    scores: list[PairScore | None] = field(default_factory=list, repr=False)
    taken: int = 0
    left_tokens: int = 0
    waiters: int = 1

    @property
    def left(self) -> int:
        """Documents not yet taken into a pass."""
        return len(self.documents) - self.taken


@dataclass
class _Pass:
    parts: list[tuple[Job, int, int]]
    tokens: int


class MicroBatcher:
    """Queues rank requests and scores them in shared, budgeted passes in a worker thread.

    ``submit`` admits a request (or raises :class:`Overloaded`), ``result`` waits for its ranking, and
    ``release`` says a client is gone: once every client of a job is gone its remaining pairs are dropped.
    The budgets are ``limits``' queue and batch fields; ``micro_batching=False`` runs one request per
    pass (still split by the pass budgets). ``on_pass`` is told the pairs, tokens and seconds of each
    pass that scored.
    """

    def __init__(
        self,
        reranker: RerankBackend,
        limits: ServiceLimits | None = None,
        *,
        on_pass: Callable[[int, int, float], None] | None = None,
    ) -> None:
        limits = limits or ServiceLimits()
        if min(limits.max_batch_pairs, limits.max_batch_tokens, limits.max_queue, limits.max_queued_pairs) < 1:
            raise ValueError("the batch and queue budgets must be >= 1")
        self.reranker = reranker
        self.limits = limits
        self.on_pass = on_pass
        self.batches = 0
        self.abandoned = 0
        self.tokens_per_second: float | None = None
        self._pending: deque[Job] = deque()
        self._by_key: dict[str, Job] = {}
        self._queued_pairs = 0
        self._queued_tokens = 0
        self._running_tokens = 0
        self._arrived: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None  # model passes only: tokenising elsewhere cannot starve them

    # -- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._arrived = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rerank-model")
        self._worker = asyncio.create_task(self._work())

    async def stop(self) -> None:
        """Stop the worker; requests still waiting fail with :class:`Overloaded` ("shutting down")."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._worker = None
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        for job in list(self._pending):
            self._forget(job)
            if not job.done.done():
                job.done.set_exception(Overloaded("the service is shutting down", MIN_RETRY_AFTER))

    # -- the queue -------------------------------------------------------------------------------------

    @property
    def queued(self) -> dict[str, int]:
        """Work admitted and not yet scored: requests, pairs and model tokens (the running pass included)."""
        return {
            "requests": len(self._pending),
            "pairs": self._queued_pairs,
            "tokens": self._queued_tokens + self._running_tokens,
        }

    def retry_after(self) -> int:
        """Whole seconds until the backlog is likely scored, from the measured rate (1 s until measured)."""
        backlog = self._queued_tokens + self._running_tokens
        if not self.tokens_per_second or not backlog:
            return MIN_RETRY_AFTER
        return max(MIN_RETRY_AFTER, min(MAX_RETRY_AFTER, math.ceil(backlog / self.tokens_per_second)))

    def submit(
        self,
        query: str,
        documents: list[str],
        costs: list[int],
        *,
        key: str | None = None,
        digest: str | None = None,
    ) -> Job:
        """Admit one request (``costs``: model tokens per document), or join the in-flight job with ``key``."""
        if self._arrived is None:
            raise RuntimeError("MicroBatcher.start() has not been awaited")
        if key is not None and key in self._by_key:
            job = self._by_key[key]
            if job.digest != digest:
                raise IdempotencyConflict("this Idempotency-Key is in flight for a different request")
            job.waiters += 1
            return job
        tokens = sum(costs)
        waiting = sum(1 for job in self._pending if job.left)
        if waiting:
            over = (
                f"{self.limits.max_queue} requests are waiting"
                if waiting >= self.limits.max_queue
                else f"{self._queued_pairs} pairs are waiting"
                if self._queued_pairs + len(documents) > self.limits.max_queued_pairs
                else f"{self._queued_tokens} tokens are waiting"
                if self._queued_tokens + tokens > self.limits.max_queued_tokens
                else None
            )
            if over:
                raise Overloaded(over, self.retry_after())
        job = Job(query, documents, costs, asyncio.get_running_loop().create_future(), key, digest)
        job.scores, job.left_tokens = [None] * len(documents), tokens
        self._pending.append(job)
        if key is not None:
            self._by_key[key] = job
        self._queued_pairs += len(documents)
        self._queued_tokens += tokens
        self._arrived.set()
        return job

    async def result(self, job: Job) -> list[RankedResult]:
        """The job's full ranking; waiting here never cancels the job for its other clients."""
        return await asyncio.shield(job.done)

    def release(self, job: Job) -> None:
        """One client of ``job`` is done (answered or gone); the last one gone drops its unscored pairs."""
        job.waiters -= 1
        if job.waiters > 0 or job.done.done():
            return
        self.abandoned += 1
        logger.info("dropping a request whose client has gone (%d of %d pairs unscored)", job.left, len(job.documents))
        self._forget(job)
        job.done.cancel()

    async def rank(self, query: str, documents: list[str], costs: list[int] | None = None) -> list[RankedResult]:
        """All of ``documents`` ranked for ``query`` (no cut): ``submit`` then ``result``."""
        job = self.submit(query, documents, costs if costs is not None else [1] * len(documents))
        try:
            return await self.result(job)
        finally:
            self.release(job)

    def _forget(self, job: Job) -> None:
        """Take ``job`` off the queue and its budgets (its pairs in a running pass are counted there)."""
        if job in self._pending:
            self._pending.remove(job)
            self._queued_pairs -= job.left
            self._queued_tokens -= job.left_tokens
        if job.key is not None and self._by_key.get(job.key) is job:
            del self._by_key[job.key]

    # -- the worker ------------------------------------------------------------------------------------

    async def _gathered(self) -> None:
        """Wait for work, then up to ``max_wait_ms`` for more to share the pass, unless the pass is full."""
        assert self._arrived is not None
        limits = self.limits
        while not any(job.left for job in self._pending):
            self._arrived.clear()
            await self._arrived.wait()
        if not limits.micro_batching or limits.max_wait_ms <= 0:
            return
        deadline = asyncio.get_running_loop().time() + limits.max_wait_ms / 1000
        while self._queued_pairs < limits.max_batch_pairs and self._queued_tokens < limits.max_batch_tokens:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            self._arrived.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    def _take(self) -> _Pass:
        """Pairs for one pass within the pair and token budgets (at least one pair).

        Requests that fit in one pass go first, in arrival order, so a small request never waits
        behind all of a large one; the room left goes to the larger requests, oldest first.
        """
        parts: list[tuple[Job, int, int]] = []
        pairs = tokens = 0
        limits = self.limits

        def too_large(job: Job) -> bool:
            return job.left_tokens > limits.max_batch_tokens or job.left > limits.max_batch_pairs

        for job in sorted(self._pending, key=too_large):  # stable: arrival order within each group
            start = end = job.taken
            while end < len(job.documents) and pairs < limits.max_batch_pairs:
                if pairs and tokens + job.costs[end] > limits.max_batch_tokens:
                    break
                tokens += job.costs[end]
                job.left_tokens -= job.costs[end]
                pairs += 1
                end += 1
            if end > start:
                parts.append((job, start, end))
                job.taken = end
                if not limits.micro_batching:
                    break
            if pairs >= limits.max_batch_pairs or tokens >= limits.max_batch_tokens:
                break
        self._queued_pairs -= pairs
        self._queued_tokens -= tokens
        self._running_tokens = tokens
        return _Pass(parts, tokens)

    async def _score(self, parts: list[tuple[Job, int, int]]) -> list[PairScore] | None:
        """Scores of the parts' pairs; a failing pass is retried per request so one bad request fails alone."""
        pairs = [(job.query, text) for job, start, end in parts for text in job.documents[start:end]]
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, self.reranker.pair_scores, pairs)
        except Exception as error:
            if len(parts) == 1:
                job = parts[0][0]
                logger.exception("scoring a request failed")
                self._forget(job)
                if not job.done.done():
                    job.done.set_exception(error)
                return None
            logger.warning("a pass over %d requests failed (%s); scoring them one by one", len(parts), error)
            for part in parts:
                own = await self._score([part])
                if own is not None:
                    self._place([part], own)
            return None

    def _place(self, parts: list[tuple[Job, int, int]], scores: list[PairScore]) -> None:
        offset = 0
        for job, start, end in parts:
            job.scores[start:end] = scores[offset : offset + end - start]
            offset += end - start
            if end == len(job.documents) and not job.done.done():
                self._forget(job)
                scored = [s for s in job.scores if s is not None]
                job.done.set_result(rank_scored(job.documents, scored, p_any=self.reranker.any_relevant(scored)))

    async def _work(self) -> None:
        while True:
            await self._gathered()
            batch = self._take()
            if not batch.parts:
                continue
            started = time.perf_counter()
            try:
                scores = await self._score(batch.parts)
            finally:
                self._running_tokens = 0
            self.batches += 1
            if scores is not None:
                self._place(batch.parts, scores)
                seconds = time.perf_counter() - started
                if self.on_pass is not None:
                    self.on_pass(len(scores), batch.tokens, seconds)
                rate = batch.tokens / max(seconds, 1e-6)
                previous = self.tokens_per_second
                self.tokens_per_second = rate if previous is None else 0.7 * previous + 0.3 * rate
