"""uvicorn set up for untrusted clients: header deadlines, header size, keep-alive, connections, drain."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from rerank_plugins._optional import require
from rerank_plugins.serving.limits import ServiceLimits

__all__ = ["make_server", "server_config"]

logger = logging.getLogger(__name__)


def _protocol_class(header_timeout: float) -> Any:
    """uvicorn's h11 protocol with a deadline for each request's headers (uvicorn has none of its own)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderDeadlineProtocol(H11Protocol):
        """Closes a connection whose next request's headers are not complete ``header_timeout`` s after
        it opened or after its last response: idle, half-sent or dripping headers cannot hold a socket."""

        _deadline: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(header_timeout, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            if (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing():
                peer = "{}:{}".format(*self.client) if self.client else "a client"
                if self.cycle is None:  # a slow or hostile client: worth an operator's eye
                    logger.info("closed %s: its request headers were not complete within %g s", peer, header_timeout)
                else:
                    logger.debug("closed %s: no next request within %g s", peer, header_timeout)
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def handle_events(self) -> None:
            before = self.cycle
            super().handle_events()
            if self.cycle is not before:  # a request's headers are complete
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

    return HeaderDeadlineProtocol


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
        http=_protocol_class(limits.header_timeout_s),
        h11_max_incomplete_event_size=limits.max_header_bytes,
        timeout_keep_alive=max(1, round(limits.keep_alive_s)),
        limit_concurrency=limits.max_connections,
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
