"""ASGI middleware around the whole service: a request id, one access-log line, and request metrics.

The id is the caller's ``X-Request-Id`` when it is short and plain, else a new one; it comes back in
the ``X-Request-Id`` header (and as Cohere's ``id``) and names the request in every log line.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from rerank_plugins.serving.guard import CLIENT_GONE, App, Message, Receive, Scope, Send
from rerank_plugins.serving.metrics import ServiceMetrics

__all__ = ["REQUEST_ID_HEADER", "RequestLog", "request_id_of"]

access_log = logging.getLogger("rerank_plugins.serving.access")

REQUEST_ID_HEADER = "x-request-id"
_PLAIN_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_of(scope: Scope) -> str:
    """The id ``RequestLog`` gave this request (empty outside it)."""
    return str(scope.get("state", {}).get("request_id", ""))


class RequestLog:
    """Gives each HTTP request an id, logs one line when it is answered, and counts it in ``metrics``.

    Endpoints outside ``endpoints`` are counted as ``other``, so scanners cannot grow the label set.
    """

    def __init__(self, app: App, metrics: ServiceMetrics, endpoints: frozenset[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"x-request-id"), "")
        request_id = sent if _PLAIN_ID.fullmatch(sent) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status, started_answer = 500, False

        async def answer(message: Message) -> None:
            nonlocal status, started_answer
            if message["type"] == "http.response.start":
                status, started_answer = message["status"], True
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER.encode(), request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, answer)
            if not started_answer:  # closed by the server (framing) or left mid-body: not a failure of ours
                state = scope["state"]
                status = state.get("closed_with", CLIENT_GONE if state.get("client_gone") else status)
        finally:
            seconds = time.perf_counter() - started
            path = scope["path"]
            endpoint = path if path in self.endpoints else "other"
            self.metrics.observe_request(endpoint, status, seconds)
            client = scope.get("client") or ("-", 0)
            access_log.info(
                '%s "%s %s" %d %.1f ms id=%s', client[0], scope["method"], endpoint, status, seconds * 1000, request_id
            )
