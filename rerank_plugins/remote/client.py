"""``RemoteReranker``: the ``Reranker`` surface over HTTP, with timeouts, retries and a real async path."""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import json
import logging
import math
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from rerank_plugins._optional import require
from rerank_plugins.backend import PairScore, RerankBackend
from rerank_plugins.encoding import clean_text
from rerank_plugins.remote.credentials import API_KEY_ENV, split_credentials
from rerank_plugins.remote.deadline import attempt_deadline, bound_by_deadline
from rerank_plugins.remote.wire import Api, MalformedAnswer, parse_response, request_body
from rerank_plugins.validation import is_number

__all__ = ["RemoteRerankError", "RemoteReranker"]

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_RETRY_AFTER = 120.0
DETAIL_CHARS = 300
PLAIN_ANSWERS = {"Accept-Encoding": "identity"}
"""Asked of every request: a compressed answer of a few kB can expand to gigabytes, so none is decoded."""


class RemoteRerankError(RuntimeError):
    """The rerank service could not be reached, kept failing, refused the request, or answered nonsense."""


class _AttemptTimeout(Exception):
    """One attempt ran past its time (the answer was too slow in coming, even if it kept trickling)."""


@dataclass(frozen=True)
class _Answer:
    """A whole HTTP answer, read within the attempt's time and the size cap."""

    status_code: int
    headers: Any
    content: bytes


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta seconds or an HTTP date), clamped to
    [0, ``MAX_RETRY_AFTER``]; ``None`` when it is missing, unreadable or not finite (then back-off applies)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _content_encoding(response: Any) -> str | None:
    """The answer's ``Content-Encoding`` when it is anything but identity (the body is then not read)."""
    value = response.headers.get("content-encoding", "")
    codings = [coding.strip().lower() for coding in value.split(",") if coding.strip()]
    return value if any(coding != "identity" for coding in codings) else None


def _sendable(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The pairs with each lone surrogate (which UTF-8 cannot carry) replaced by ``?``, as the local core and
    the service replace it, so a text scores the same wherever it is scored."""
    return [(clean_text(query), clean_text(document)) for query, document in pairs]


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
        url: base URL of the service, e.g. ``"http://127.0.0.1:8000"`` (``/rerank`` is appended). A
            ``user:password@`` in it is sent as HTTP Basic auth but never shown or stored (``url``,
            ``repr``, errors, logs and ``options()`` hold the URL without it).
        api_key: sent as ``Authorization: Bearer <api_key>`` (``rerank-plugins serve --api-key``); default:
            ``$RERANK_PLUGINS_API_KEY`` when no other credentials are given. Never in ``options()`` or
            ``repr``, so a restored adapter reads it from the environment again.
        api: ``"rerank-plugins"`` (``rerank-plugins serve``) or ``"tei"`` (Text Embeddings Inference).
        timeout: seconds one attempt may take to get its whole answer; ``connect_timeout`` for the connection.
        deadline: seconds one call may take, retries and waits included (default: ``timeout`` times the
            number of attempts); a ``Retry-After`` beyond it ends the call at once.
        max_retries: further attempts after a connection error, a timeout, or HTTP 429/502/503/504.
        backoff: first wait between attempts in seconds, doubled each time (or the server's Retry-After).
        max_documents_per_request: longer document lists are sent in several requests.
        max_answer_bytes: a larger answer is refused (``RemoteRerankError``) rather than held in memory; a
            compressed one is refused unread (the client asks for ``Accept-Encoding: identity``).
        headers: sent with every request; credentials among them (``Authorization``, ...) stay out of ``options()``.
        transport / async_transport: httpx transports (tests; proxies). The sync call's deadline covers each
            socket operation of httpx's own transports; a custom one gets per-read timeouts only.

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
        deadline: float | None = None,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_documents_per_request: int = 1000,
        max_answer_bytes: int = 16 * 2**20,
        api_key: str | None = None,
        headers: dict[str, str] | None = None,
        transport: Any = None,
        async_transport: Any = None,
    ) -> None:
        self._httpx = require("httpx", "remote")
        if not isinstance(url, str):
            raise ValueError(f"url must be an http:// or https:// URL of a rerank service, got {type(url).__name__}")
        url, plain_headers, credentials = split_credentials(url, api_key, headers)
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url must be an http:// or https:// URL of a rerank service, got {url!r}")
        if api not in ("rerank-plugins", "tei"):
            raise ValueError(f"api must be 'rerank-plugins' or 'tei', got {api!r}")
        numbers = (timeout, connect_timeout, backoff, deadline if deadline is not None else 1.0)
        if not all(is_number(x) and math.isfinite(x) for x in numbers):
            raise ValueError("timeout, connect_timeout, deadline and backoff must be finite numbers")
        if max_retries < 0 or backoff < 0 or timeout <= 0 or connect_timeout <= 0 or max_documents_per_request < 1:
            raise ValueError("timeouts must be > 0, max_retries and backoff >= 0, max_documents_per_request >= 1")
        if (deadline is not None and deadline <= 0) or max_answer_bytes < 1:
            raise ValueError("deadline and max_answer_bytes must be > 0")
        self.url = url.rstrip("/")
        self.model_name = self.url
        self.api: Api = api
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.deadline = deadline
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_documents_per_request = max_documents_per_request
        self.max_answer_bytes = max_answer_bytes
        self.headers = plain_headers
        self._sent_headers = {**plain_headers, **credentials.headers}
        self._auth = self._httpx.BasicAuth(*credentials.basic) if credentials.basic is not None else None
        self._timeouts = self._httpx.Timeout(timeout, connect=connect_timeout)
        self._async_transport = async_transport
        self._client = self._httpx.Client(
            timeout=self._timeouts, headers=self._sent_headers, auth=self._auth, transport=transport
        )
        bound_by_deadline(self._client)

    def __repr__(self) -> str:
        return f"RemoteReranker(url={self.url!r}, api={self.api!r})"

    def options(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "api": self.api,
            "timeout": self.timeout,
            "connect_timeout": self.connect_timeout,
            "deadline": self.deadline,
            "max_retries": self.max_retries,
            "backoff": self.backoff,
            "max_documents_per_request": self.max_documents_per_request,
            "max_answer_bytes": self.max_answer_bytes,
            "headers": dict(self.headers),
        }

    def close(self) -> None:
        self._client.close()

    # -- one request, with retries ---------------------------------------------------------------------

    def _call_deadline(self) -> float:
        span = self.deadline if self.deadline is not None else self.timeout * (self.max_retries + 1)
        return time.monotonic() + span

    def _attempt_timeouts(self, stop: float) -> Any:
        left = max(stop - time.monotonic(), 0.001)
        return self._httpx.Timeout(left, connect=min(self.connect_timeout, left))

    def _declared_too_large(self, response: Any) -> None:
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_answer_bytes:
            raise RemoteRerankError(
                f"rerank service at {self.url} sent a {declared}-byte answer; the limit is {self.max_answer_bytes}"
            )

    def _grow(self, data: bytearray, chunk: bytes, stop: float) -> None:
        data += chunk
        if len(data) > self.max_answer_bytes:
            raise RemoteRerankError(
                f"rerank service at {self.url} sent more than {self.max_answer_bytes} bytes; the answer was dropped"
            )
        if time.monotonic() > stop:
            raise self._timed_out()

    def _unread(self, response: Any) -> _Answer | None:
        """An answer whose body is not to be read: an empty one for a compressed answer worth retrying
        (429, 502-504); ``RemoteRerankError`` for any other compressed answer; ``None`` to read the body."""
        encoding = _content_encoding(response)
        if encoding is None:
            self._declared_too_large(response)
            return None
        if response.status_code in RETRY_STATUSES:
            return _Answer(response.status_code, response.headers, b"")
        raise RemoteRerankError(
            f"rerank service at {self.url} answered {response.status_code} with a body in Content-Encoding "
            f"{encoding!r:.60}; only uncompressed answers are read (a small compressed one can expand to gigabytes)"
        )

    def _read(self, body: dict[str, Any], headers: dict[str, str], stop: float) -> _Answer:
        timeouts = self._attempt_timeouts(stop)
        url = f"{self.url}/rerank"
        with (
            attempt_deadline(stop),
            self._client.stream("POST", url, json=body, headers=headers, timeout=timeouts) as response,
        ):
            unread = self._unread(response)
            if unread is not None:
                return unread
            data = bytearray()
            # an answer a custom transport built in memory (``transport=``) is already whole
            chunks = [response.content] if response.is_stream_consumed else response.iter_raw()
            for chunk in chunks:
                self._grow(data, chunk, stop)
            return _Answer(response.status_code, response.headers, bytes(data))

    async def _aread(self, client: Any, body: dict[str, Any], headers: dict[str, str], stop: float) -> _Answer:
        timeouts = self._attempt_timeouts(stop)
        async with client.stream(
            "POST", f"{self.url}/rerank", json=body, headers=headers, timeout=timeouts
        ) as response:
            unread = self._unread(response)
            if unread is not None:
                return unread
            data = bytearray()
            if response.is_stream_consumed:  # built in memory by a custom transport: already whole
                self._grow(data, response.content, stop)
            else:
                async for chunk in response.aiter_raw():
                    self._grow(data, chunk, stop)
            return _Answer(response.status_code, response.headers, bytes(data))

    def _attempt_stop(self, call_stop: float) -> float:
        return min(time.monotonic() + self.timeout, call_stop)

    def _payload(self, answer: _Answer) -> Any:
        """The answer's JSON (``None`` when empty); raises for a 2xx answer that is not JSON or is nested
        past the parser's depth (``[[[...]]]``), and gives ``None`` for such a refusal."""
        try:
            return json.loads(answer.content) if answer.content else None
        except (ValueError, RecursionError) as error:
            if 200 <= answer.status_code < 300:
                what = "nested too deeply to parse" if isinstance(error, RecursionError) else "not JSON"
                raise RemoteRerankError(
                    f"rerank service at {self.url} answered {answer.status_code} with a body that is {what}"
                ) from None
            return None

    def _refusal(self, answer: _Answer, payload: Any) -> Exception:
        """The error for a non-2xx answer: ``ValueError`` for 413 and 422 (the input), else ``RemoteRerankError``."""
        detail = payload.get("detail", payload) if isinstance(payload, dict) else answer.content[:DETAIL_CHARS]
        try:
            shown = str(detail)[:DETAIL_CHARS]
        except RecursionError:
            shown = "(a detail nested too deeply to show)"
        hint = f" (pass api_key= or set {API_KEY_ENV})" if answer.status_code == 401 else ""
        error = ValueError if answer.status_code in (413, 422) else RemoteRerankError
        return error(f"rerank service at {self.url} answered {answer.status_code}: {shown}{hint}")

    def _outcome(self, answer: _Answer | Exception, documents: list[str]) -> list[PairScore] | None:
        """Scores, or None for an answer worth retrying (a transport error, a timeout, 429, 502-504);
        raises for answers that will not improve."""
        if isinstance(answer, Exception) or answer.status_code in RETRY_STATUSES:
            return None
        payload = self._payload(answer)
        if not 200 <= answer.status_code < 300:
            raise self._refusal(answer, payload)
        try:
            return parse_response(self.api, payload, [len(document) for document in documents])
        except (MalformedAnswer, RecursionError) as problem:
            why = problem if isinstance(problem, MalformedAnswer) else "values nested too deeply"
            raise RemoteRerankError(f"rerank service at {self.url} sent a malformed answer: {why}") from None

    def _retry_wait(self, attempt: int, answer: _Answer | Exception, call_stop: float) -> float:
        """Seconds to wait before the next attempt (Retry-After, else doubling back-off); raises when the
        attempts or the call's deadline are spent."""
        last = f"{type(answer).__name__}: {answer}" if isinstance(answer, Exception) else f"HTTP {answer.status_code}"
        if attempt >= self.max_retries:
            raise RemoteRerankError(f"rerank service at {self.url} did not answer after {attempt + 1} attempts: {last}")
        asked = None if isinstance(answer, Exception) else retry_after_seconds(answer.headers.get("Retry-After"))
        wait = float(self.backoff * 2**attempt) if asked is None else asked
        left = call_stop - time.monotonic()
        if wait >= left:
            raise RemoteRerankError(
                f"rerank service at {self.url} did not answer within the call's deadline after {attempt + 1} "
                f"attempts ({last}; the next try would be in {wait:.1f} s, {max(left, 0):.1f} s were left)"
            )
        logger.warning("rerank service at %s: %s; retrying in %.2f s", self.url, last, wait)
        return wait

    def _timed_out(self) -> _AttemptTimeout:
        return _AttemptTimeout(f"the answer was not complete within {self.timeout:g} s")

    def _post(self, query: str, documents: list[str]) -> list[PairScore]:
        body = request_body(self.api, query, documents)
        headers = {"Idempotency-Key": uuid.uuid4().hex, **PLAIN_ANSWERS}  # one key for all retries: run once
        call_stop = self._call_deadline()
        for attempt in itertools.count():
            answer: _Answer | Exception
            stop = self._attempt_stop(call_stop)
            try:
                answer = self._read(body, headers, stop)
            except (self._httpx.TransportError, _AttemptTimeout) as error:
                # a socket timeout cut short by the attempt's stop (see deadline.py) is the attempt's own timeout
                ran_out = isinstance(error, self._httpx.TimeoutException) and time.monotonic() >= stop - 0.05
                answer = self._timed_out() if ran_out else error
            scores = self._outcome(answer, documents)
            if scores is not None:
                return scores
            time.sleep(self._retry_wait(attempt, answer, call_stop))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _apost(self, client: Any, query: str, documents: list[str]) -> list[PairScore]:
        body = request_body(self.api, query, documents)
        headers = {"Idempotency-Key": uuid.uuid4().hex, **PLAIN_ANSWERS}
        call_stop = self._call_deadline()
        for attempt in itertools.count():
            answer: _Answer | Exception
            stop = self._attempt_stop(call_stop)
            try:
                answer = await asyncio.wait_for(
                    self._aread(client, body, headers, stop), max(stop - time.monotonic(), 0.001)
                )
            except asyncio.TimeoutError:
                answer = self._timed_out()
            except (self._httpx.TransportError, _AttemptTimeout) as error:
                answer = error
            scores = self._outcome(answer, documents)
            if scores is not None:
                return scores
            await asyncio.sleep(self._retry_wait(attempt, answer, call_stop))
        raise AssertionError("unreachable")  # pragma: no cover

    # -- the backend ---------------------------------------------------------------------------------

    def any_relevant(self, scored: Sequence[PairScore]) -> float | None:
        """The P(any relevant) the service computed for this query's documents; ``None`` when it sent none,
        or when the documents took several requests (``max_documents_per_request``)."""
        sent = {s.query_p_any for s in scored}
        return sent.pop() if len(sent) == 1 and None not in sent else None

    def _score_pairs(self, pairs: list[tuple[str, str]]) -> list[PairScore]:
        pairs = _sendable(pairs)
        groups = list(_query_groups(pairs, self.max_documents_per_request))
        answers = [self._post(query, [pairs[p][1] for p in positions]) for query, positions in groups]
        return _in_input_order(groups, answers, len(pairs))

    async def _ascore_pairs(self, pairs: list[tuple[str, str]]) -> list[PairScore]:
        pairs = _sendable(pairs)
        groups = list(_query_groups(pairs, self.max_documents_per_request))
        async with self._httpx.AsyncClient(
            timeout=self._timeouts, headers=self._sent_headers, auth=self._auth, transport=self._async_transport
        ) as client:
            answers = await asyncio.gather(*(self._apost(client, q, [pairs[p][1] for p in ps]) for q, ps in groups))
        return _in_input_order(groups, answers, len(pairs))
