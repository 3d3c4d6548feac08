"""uvicorn set up for untrusted clients: header deadlines, header size, keep-alive, connections, framing, drain."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any

from rerank_plugins._optional import require
from rerank_plugins.serving.limits import ServiceLimits

__all__ = ["make_server", "server_config"]

logger = logging.getLogger(__name__)


FRAMING_SLICE = 2048
"""Bytes handed to the HTTP parser at a time, so framing abuse is caught within a slice's work."""
FRAMING_GRACE = 2048
"""Wire bytes of a body before its framing overhead is judged."""
INCOMPLETE_SLACK = 65536
"""Bytes h11 may buffer past ``max_header_bytes`` before a header block is complete: headers arrive in
``FRAMING_SLICE`` pieces, and a complete block over the limit is answered 431 by the guard."""
MAX_WIRE_TO_BODY = 2.0
"""A body whose wire bytes exceed this multiple of its content (absurdly small chunks) is refused."""


def _protocol_class(limits: ServiceLimits) -> Any:
    """uvicorn's h11 protocol with a deadline for each request's headers (uvicorn has none of its own),
    a cap on open connections that closes idle ones first, and a bound on chunk framing per body."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    header_timeout = limits.header_timeout_s
    idle_connections: OrderedDict[Any, None] = OrderedDict()  # connections with no request under way, oldest first

    class GuardedProtocol(H11Protocol):
        """Closes a connection whose next request's headers are not complete ``header_timeout`` s after
        it opened or after its last response: idle, half-sent or dripping headers cannot hold a socket.
        Past ``max_connections`` open ones, the oldest idle connection is closed to make room (as nginx
        reuses keep-alive connections), so sockets that send nothing cannot refuse anyone else. A body
        sent in absurdly small chunks is refused with 400 before its framing can hold the event loop."""

        _deadline: asyncio.TimerHandle | None = None
        _wire = 0
        _body = 0
        _chunked = False

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(header_timeout, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        @property
        def idle(self) -> bool:
            """No request under way: waiting for (the rest of) the next request's headers."""
            return self.cycle is None or self.cycle.response_complete

        def _expire(self) -> None:
            if self.idle and not self.transport.is_closing():
                peer = "{}:{}".format(*self.client) if self.client else "a client"
                if self.cycle is None:  # a slow or hostile client: worth an operator's eye
                    logger.info("closed %s: its request headers were not complete within %g s", peer, header_timeout)
                else:
                    logger.debug("closed %s: no next request within %g s", peer, header_timeout)
                self.transport.close()

        def _make_room(self) -> None:
            """Close the oldest idle connection while more than ``max_connections`` are open (this one if
            every other one is busy)."""
            while len(self.connections) > limits.max_connections and idle_connections:
                oldest, _ = idle_connections.popitem(last=False)
                oldest.transport.close()
                self.connections.discard(oldest)
                logger.debug("%d connections open: closed the oldest idle one", len(self.connections))

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            idle_connections[self] = None
            self._arm()
            self._make_room()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            idle_connections.pop(self, None)
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            cycle = self.cycle
            if cycle is not None and not cycle.response_complete and not self._chunked:
                super().data_received(data)  # a Content-Length body: its framing costs nothing to judge
                return
            for start in range(0, len(data), FRAMING_SLICE):  # headers, or a chunked body: judged per slice
                if self.transport.is_closing():
                    return
                self._parse(data[start : start + FRAMING_SLICE])

        def _parse(self, data: bytes) -> None:
            cycle = self.cycle
            reading = cycle is not None and not cycle.response_complete and cycle.more_body
            before = len(cycle.body) if reading else 0
            super().data_received(data)
            if not reading or self.cycle is not cycle:
                return
            self._wire += len(data)
            self._body += len(cycle.body) - before
            if self._wire > FRAMING_GRACE and self._wire > MAX_WIRE_TO_BODY * self._body:
                logger.info("refused a body in %d wire bytes for %d bytes of content", self._wire, self._body)
                cycle.scope["state"]["closed_with"] = 400
                if self.conn.our_state is h11.SEND_RESPONSE:
                    self.send_400_response("the body's chunks are too small: send it in larger chunks")
                else:
                    self.transport.close()

        def handle_events(self) -> None:
            before = self.cycle
            super().handle_events()
            if self.cycle is not before:  # a request's headers are complete
                self._disarm()
                idle_connections.pop(self, None)
                self._wire = self._body = 0
                self._chunked = any(name == b"transfer-encoding" for name, _ in self.headers)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                idle_connections[self] = None  # the newest idle one again
                self._arm()

    return GuardedProtocol


def server_config(
    app: Any, limits: ServiceLimits, *, host: str, port: int, log_level: str = "warning", own_logging: bool = False
) -> Any:
    """A ``uvicorn.Config`` for ``app`` that enforces the connection-level ``limits``.

    ``own_logging`` lets uvicorn set up its log handlers (a process of its own, as ``serve``); otherwise
    logging is left as the caller has it. Access lines come from the app (with request ids), not uvicorn.
    """
    uvicorn = require("uvicorn", "serve")
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        log_config=uvicorn.config.LOGGING_CONFIG if own_logging else None,
        access_log=False,
        lifespan="on",
        http=_protocol_class(limits),
        h11_max_incomplete_event_size=limits.max_header_bytes + INCOMPLETE_SLACK,
        timeout_keep_alive=max(1, round(limits.keep_alive_s)),
        timeout_graceful_shutdown=max(1, round(limits.drain_timeout_s)),
    )


def make_server(config: Any) -> Any:
    """A ``uvicorn.Server`` for ``config`` that tells the app when it starts to drain (SIGTERM, Ctrl-C).

    The app's ``Lifecycle`` (``app.state.lifecycle``) learns its URL once bound, and turns not ready
    at the first exit signal, so ``/health`` fails and new requests get 503 while queued work finishes.
    """
    uvicorn = require("uvicorn", "serve")
    lifecycle = getattr(getattr(config.app, "state", None), "lifecycle", None)

    class DrainingServer(uvicorn.Server):  # type: ignore[misc, name-defined]
        async def startup(self, sockets: Any = None) -> None:
            if lifecycle is not None and lifecycle.url is None:
                bound = sockets[0].getsockname()[1] if sockets else config.port
                lifecycle.url = f"http://{config.host}:{bound}"
            await super().startup(sockets=sockets)

        def handle_exit(self, sig: int, frame: Any) -> None:
            if lifecycle is not None:
                lifecycle.draining, lifecycle.ready = True, False
            super().handle_exit(sig, frame)

    return DrainingServer(config)
