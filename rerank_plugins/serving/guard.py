"""ASGI middleware that bounds what a connection can make the service hold, before any parsing.

It refuses too many headers (431), a ``Content-Length`` or streamed body over the cap (413), a body
that arrives too slowly (408) and bodies beyond the budget of bytes held at once (503), then hands
the app the whole body in one piece. Refusals close the connection, so a client cannot keep sending.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from rerank_plugins.serving.limits import ServiceLimits

__all__ = ["GuardStats", "RequestGuard", "refuse"]

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
    """Bytes the bodies of requests in progress hold right now, and refusals by status."""

    held_bytes: int = 0
    refused: dict[int, int] = field(default_factory=dict)

    def count(self, status: int) -> None:
        self.refused[status] = self.refused.get(status, 0) + 1


class RequestGuard:
    """Wraps an ASGI app and enforces the body and header limits of ``limits`` (see the module doc)."""

    def __init__(
        self, app: App, limits: ServiceLimits, stats: GuardStats, retry_after: Callable[[], int] = lambda: 1
    ) -> None:
        self.app = app
        self.limits = limits
        self.stats = stats
        self.retry_after = retry_after

    async def _refuse(self, send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        self.stats.count(status)
        await refuse(send, status, detail, headers)

    async def _overloaded(self, send: Send) -> None:
        await self._refuse(
            send, 503, "service overloaded: too many request bodies in progress; retry later",
            {"Retry-After": str(self.retry_after())},
        )  # fmt: skip

    def _header_problem(self, scope: Scope) -> tuple[int, str] | None:
        """The refusal the headers alone earn (count, size, Content-Length), if any."""
        limits, headers = self.limits, scope["headers"]
        if len(headers) > limits.max_headers:
            return 431, f"more than {limits.max_headers} header lines"
        if sum(len(name) + len(value) + 4 for name, value in headers) > limits.max_header_bytes:
            return 431, f"the headers exceed {limits.max_header_bytes} bytes"
        for name, value in headers:
            if name == b"content-length":
                if not value.isdigit():
                    return 400, "Content-Length is not a number"
                if int(value) > limits.max_body_bytes:
                    return 413, f"the body is {int(value)} bytes; the limit is {limits.max_body_bytes} bytes"
        return None

    async def _read_body(self, receive: Receive, send: Send, held: list[int]) -> bytes | None:
        """The whole body within the size, time and held-bytes limits, or ``None`` once refused or gone.

        ``held[0]`` counts this request's bytes, so the caller can give them back when it is done.
        """
        limits = self.limits
        chunks: list[bytes] = []
        deadline = time.monotonic() + limits.body_timeout_s
        more = True
        while more:
            try:
                message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0.0))
            except asyncio.TimeoutError:
                await self._refuse(send, 408, f"the body did not arrive within {limits.body_timeout_s:g} s")
                return None
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            held[0] += len(chunk)
            self.stats.held_bytes += len(chunk)
            if held[0] > limits.max_body_bytes:
                await self._refuse(send, 413, f"the body exceeds the limit of {limits.max_body_bytes} bytes")
                return None
            if self.stats.held_bytes > limits.max_inflight_body_bytes:
                await self._overloaded(send)
                return None
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        return b"".join(chunks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = self._header_problem(scope)
        if problem is not None:
            await self._refuse(send, *problem)
            return
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        declared = next((int(value) for name, value in scope["headers"] if name == b"content-length"), 0)
        if self.stats.held_bytes + declared > self.limits.max_inflight_body_bytes:
            await self._overloaded(send)
            return
        held = [0]
        try:
            body = await self._read_body(receive, send, held)
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
            self.stats.held_bytes -= held[0]
