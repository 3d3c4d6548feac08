"""ASGI middleware that bounds what a connection can make the service hold, before any parsing.

It refuses a request that both declares a length and is chunked, or is chunked over HTTP/1.0 (400:
the framing of request smuggling), too many headers (431), a ``Content-Length`` or streamed body over
the cap (413), a body that arrives too slowly (408), more requests in progress than allowed, or bodies
beyond the budget of bytes held at once (503, see ``uploads``), then hands the app the whole body in
one piece. Refusals close the connection, so a client cannot keep sending.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from rerank_plugins.serving.limits import ServiceLimits
from rerank_plugins.serving.uploads import BodyBudget, Upload

__all__ = ["CLIENT_GONE", "PROBES", "GuardStats", "RequestGuard", "refuse"]

PROBES = frozenset({"/live", "/health"})
"""Paths that answer under any load: never counted toward, nor refused by, the request limit."""
CLIENT_GONE = 499
"""The status logged and counted for a request whose client left before it was answered (nginx's)."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


async def refuse(send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    """Answer ``{"detail": ...}`` with ``status`` and close the connection (its body is not read)."""
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(b"connection", b"close")] + [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


@dataclass
class GuardStats:
    """Requests in progress, the body bytes they hold (``budget``), and refusals by status."""

    budget: BodyBudget
    in_flight: int = 0
    refused: dict[int, int] = field(default_factory=dict)

    @property
    def held_bytes(self) -> int:
        return self.budget.held

    def count(self, status: int) -> None:
        self.refused[status] = self.refused.get(status, 0) + 1


class RequestGuard:
    """Wraps an ASGI app and enforces the request, body and header limits of ``limits`` (see the module doc).

    ``backlog`` is the queue's estimate, in whole seconds, of when it has room again.
    """

    def __init__(
        self, app: App, limits: ServiceLimits, stats: GuardStats, backlog: Callable[[], int] = lambda: 1
    ) -> None:
        self.app = app
        self.limits = limits
        self.stats = stats
        self.backlog = backlog

    async def _refuse(self, send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        self.stats.count(status)
        await refuse(send, status, detail, headers)

    async def _overloaded(self, send: Send, what: str, retry_after: int) -> None:
        await self._refuse(send, 503, f"service overloaded: {what}; retry later", {"Retry-After": str(retry_after)})

    async def _no_room(self, send: Send) -> None:
        """503 for a body the budget of held bytes cannot take, with its ``Retry-After``."""
        retry = self.stats.budget.retry_after(time.monotonic(), self.backlog())
        await self._overloaded(send, "too many request bodies in progress", retry)

    def _header_problem(self, scope: Scope) -> tuple[int, str] | None:
        """The refusal the headers alone earn (framing, count, size, Content-Length), if any."""
        limits, headers = self.limits, scope["headers"]
        if len(headers) > limits.max_headers:
            return 431, f"more than {limits.max_headers} header lines"
        if sum(len(name) + len(value) + 4 for name, value in headers) > limits.max_header_bytes:
            return 431, f"the headers exceed {limits.max_header_bytes} bytes"
        names = {name for name, _ in headers}
        if b"transfer-encoding" in names and b"content-length" in names:  # RFC 9112 6.1: close, never guess
            return 400, "the request has both Content-Length and Transfer-Encoding; send one"
        if b"transfer-encoding" in names and scope.get("http_version") == "1.0":
            return 400, "Transfer-Encoding is not part of HTTP/1.0; send Content-Length"
        for name, value in headers:
            if name == b"content-length":
                if not value.isdigit():
                    return 400, "Content-Length is not a number"
                if int(value) > limits.max_body_bytes:
                    return 413, f"the body is {int(value)} bytes; the limit is {limits.max_body_bytes} bytes"
        return None

    async def _next(self, receive: Receive, upload: Upload) -> Message | None:
        """The next message from the client, or ``None`` when the body's time ran out or it was cut."""
        getting = asyncio.ensure_future(receive())
        cut = asyncio.ensure_future(upload.cut.wait())
        try:
            await asyncio.wait({getting, cut}, timeout=max(upload.deadline - time.monotonic(), 0.0),
                               return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            return getting.result() if getting.done() else None
        finally:
            getting.cancel()
            cut.cancel()

    async def _read_body(self, scope: Scope, receive: Receive, send: Send, upload: Upload) -> bytes | None:
        """The whole body within the size, time and held-bytes limits, or ``None`` once refused or gone
        (marked in the request's state, so it is logged as ``CLIENT_GONE``, not as a failure)."""
        limits, budget = self.limits, self.stats.budget
        chunks: list[bytes] = []
        more = True
        while more:
            message = await self._next(receive, upload)
            if message is None and upload.cut.is_set():
                await self._refuse(send, 408, "the body stalled while other requests waited for room; send it faster")
                return None
            if message is None:
                await self._refuse(send, 408, f"the body did not arrive within {limits.body_timeout_s:g} s")
                return None
            if message["type"] == "http.disconnect":
                scope.setdefault("state", {})["client_gone"] = True
                return None
            chunk = message.get("body", b"")
            fits = budget.grow(upload, len(chunk), time.monotonic())
            if upload.held > limits.max_body_bytes:
                await self._refuse(send, 413, f"the body exceeds the limit of {limits.max_body_bytes} bytes")
                return None
            if not fits:
                await self._no_room(send)
                return None
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        budget.done_reading(upload)
        return b"".join(chunks)

    async def _with_body(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app on the request with its whole body read first."""
        budget = self.stats.budget
        declared = next((int(value) for name, value in scope["headers"] if name == b"content-length"), 0)
        upload = budget.open(declared, time.monotonic(), self.limits.body_timeout_s)
        if upload is None:
            await self._no_room(send)
            return
        try:
            body = await self._read_body(scope, receive, send, upload)
            if body is None:
                return
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send)
        finally:
            budget.close(upload)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = self._header_problem(scope)
        if problem is not None:
            await self._refuse(send, *problem)
            return
        if scope["path"] in PROBES:
            await self.app(scope, receive, send)
            return
        if self.stats.in_flight >= self.limits.max_inflight_requests:
            await self._overloaded(send, f"{self.stats.in_flight} requests in progress", self.backlog())
            return
        self.stats.in_flight += 1
        try:
            if scope["method"] in ("POST", "PUT", "PATCH"):
                await self._with_body(scope, receive, send)
            else:
                await self.app(scope, receive, send)
        finally:
            self.stats.in_flight -= 1
