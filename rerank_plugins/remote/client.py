"""``RemoteReranker``: the ``Reranker`` surface over HTTP, with timeouts, retries and a real async path."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Iterator
from typing import Any

from rerank_plugins._optional import require
from rerank_plugins.backend import PairScore, RerankBackend
from rerank_plugins.remote.wire import Api, parse_response, request_body

__all__ = ["RemoteRerankError", "RemoteReranker"]

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_RETRY_AFTER = 30.0


class RemoteRerankError(RuntimeError):
    """The rerank service could not be reached, kept failing, or refused the request."""


def _query_groups(pairs: list[tuple[str, str]], size: int) -> Iterator[tuple[str, list[int]]]:
    """Runs of consecutive pairs with the same query, at most ``size`` long: one request each."""
    start = 0
    while start < len(pairs):
        end = start + 1
        while end < len(pairs) and end - start < size and pairs[end][0] == pairs[start][0]:
            end += 1
        yield pairs[start][0], list(range(start, end))
        start = end


def _in_input_order(groups: list[tuple[str, list[int]]], answers: list[list[PairScore]], count: int) -> list[PairScore]:
    """The scores of all groups' requests, put back at their pairs' positions."""
    scores: list[PairScore | None] = [None] * count
    for (_, positions), answered in zip(groups, answers, strict=True):
        for position, score in zip(positions, answered, strict=True):
            scores[position] = score
    return [score for score in scores if score is not None]


class RemoteReranker(RerankBackend):
    """Scores pairs on a rerank service; adapters accept it wherever they accept a ``Reranker``.

    Args:
        url: base URL of the service, e.g. ``"http://127.0.0.1:8000"`` (``/rerank`` is appended).
        api: ``"rerank-plugins"`` (``rerank-plugins serve``) or ``"tei"`` (Text Embeddings Inference).
        timeout: seconds to wait for an answer; ``connect_timeout`` for the connection.
        max_retries: further attempts after a connection error, a timeout, or HTTP 429/502/503/504.
        backoff: first wait between attempts in seconds, doubled each time (or the server's Retry-After).
        max_documents_per_request: longer document lists are sent in several requests.
        transport / async_transport: httpx transports (tests; proxies).

    Example:
        >>> remote = RemoteReranker("http://127.0.0.1:8000")  # doctest: +SKIP
        >>> RerankCompressor(reranker=remote, top_n=3)  # doctest: +SKIP
    """

    def __init__(
        self,
        url: str,
        *,
        api: Api = "rerank-plugins",
        timeout: float = 60.0,
        connect_timeout: float = 5.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_documents_per_request: int = 1000,
        headers: dict[str, str] | None = None,
        transport: Any = None,
        async_transport: Any = None,
    ) -> None:
        self._httpx = require("httpx", "remote")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"url must be an http:// or https:// URL of a rerank service, got {url!r}")
        if api not in ("rerank-plugins", "tei"):
            raise ValueError(f"api must be 'rerank-plugins' or 'tei', got {api!r}")
        if max_retries < 0 or backoff < 0 or timeout <= 0 or connect_timeout <= 0 or max_documents_per_request < 1:
            raise ValueError("timeouts must be > 0, max_retries and backoff >= 0, max_documents_per_request >= 1")
        self.url = url.rstrip("/")
        self.model_name = self.url
        self.api: Api = api
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_documents_per_request = max_documents_per_request
        self.headers = dict(headers or {})
        self._timeouts = self._httpx.Timeout(timeout, connect=connect_timeout)
        self._async_transport = async_transport
        self._client = self._httpx.Client(timeout=self._timeouts, headers=self.headers, transport=transport)

    def __repr__(self) -> str:
        return f"RemoteReranker(url={self.url!r}, api={self.api!r})"

    def options(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "api": self.api,
            "timeout": self.timeout,
            "connect_timeout": self.connect_timeout,
            "max_retries": self.max_retries,
            "backoff": self.backoff,
            "max_documents_per_request": self.max_documents_per_request,
            "headers": dict(self.headers),
        }

    def close(self) -> None:
        self._client.close()

    # -- one request, with retries ---------------------------------------------------------------------

    def _outcome(self, answer: Any, count: int) -> list[PairScore] | None:
        """Scores, or None for an answer worth retrying (a transport error, 429, 502-504); raises for
        answers that will not improve."""
        if isinstance(answer, Exception) or answer.status_code in RETRY_STATUSES:
            return None
        if answer.status_code >= 400:
            try:
                detail = answer.json().get("detail", answer.text)
            except ValueError:
                detail = answer.text
            error = ValueError if answer.status_code in (413, 422) else RemoteRerankError
            raise error(f"rerank service at {self.url} answered {answer.status_code}: {detail}")
        return parse_response(self.api, answer.json(), count)

    def _retry_wait(self, attempt: int, answer: Any) -> float:
        """Seconds to wait before the next attempt (Retry-After, else doubling back-off); raises when spent."""
        last = f"{type(answer).__name__}: {answer}" if isinstance(answer, Exception) else f"HTTP {answer.status_code}"
        if attempt >= self.max_retries:
            raise RemoteRerankError(f"rerank service at {self.url} did not answer after {attempt + 1} attempts: {last}")
        wait = float(self.backoff * 2**attempt)
        retry_after = None if isinstance(answer, Exception) else answer.headers.get("Retry-After")
        if retry_after is not None:
            try:
                wait = min(float(retry_after), MAX_RETRY_AFTER)
            except ValueError:
                pass
        logger.warning("rerank service at %s: %s; retrying in %.2f s", self.url, last, wait)
        return wait

    def _post(self, query: str, documents: list[str]) -> list[PairScore]:
        body = request_body(self.api, query, documents)
        for attempt in itertools.count():
            try:
                answer: Any = self._client.post(f"{self.url}/rerank", json=body)
            except self._httpx.TransportError as error:
                answer = error
            scores = self._outcome(answer, len(documents))
            if scores is not None:
                return scores
            time.sleep(self._retry_wait(attempt, answer))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _apost(self, client: Any, query: str, documents: list[str]) -> list[PairScore]:
        body = request_body(self.api, query, documents)
        for attempt in itertools.count():
            try:
                answer: Any = await client.post(f"{self.url}/rerank", json=body)
            except self._httpx.TransportError as error:
                answer = error
            scores = self._outcome(answer, len(documents))
            if scores is not None:
                return scores
            await asyncio.sleep(self._retry_wait(attempt, answer))
        raise AssertionError("unreachable")  # pragma: no cover

    # -- the backend ---------------------------------------------------------------------------------

    def _score_pairs(self, pairs: list[tuple[str, str]]) -> list[PairScore]:
        groups = list(_query_groups(pairs, self.max_documents_per_request))
        answers = [self._post(query, [pairs[p][1] for p in positions]) for query, positions in groups]
        return _in_input_order(groups, answers, len(pairs))

    async def _ascore_pairs(self, pairs: list[tuple[str, str]]) -> list[PairScore]:
        groups = list(_query_groups(pairs, self.max_documents_per_request))
        async with self._httpx.AsyncClient(
            timeout=self._timeouts, headers=self.headers, transport=self._async_transport
        ) as client:
            answers = await asyncio.gather(*(self._apost(client, q, [pairs[p][1] for p in ps]) for q, ps in groups))
        return _in_input_order(groups, answers, len(pairs))
