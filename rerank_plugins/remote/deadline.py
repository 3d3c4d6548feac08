"""A whole-attempt deadline for the sync client: every socket connect, read and write ends by the attempt's stop.

httpx's read timeout is per read, so a server that drips its headers a byte at a time, or sends
``100 Continue`` every second, holds a sync call for as long as it likes (the async path has
``asyncio.wait_for``). Wrapping the network backend of httpx's own transports bounds each socket
operation by the time left, so the attempt ends on time and httpcore drops the broken connection.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

__all__ = ["attempt_deadline", "bound_by_deadline"]

logger = logging.getLogger(__name__)

_STOP: ContextVar[float | None] = ContextVar("rerank_plugins_attempt_stop", default=None)


@contextmanager
def attempt_deadline(stop: float) -> Iterator[None]:
    """Socket operations of the sync client in this block end by ``stop`` (``time.monotonic()`` seconds)."""
    token = _STOP.set(stop)
    try:
        yield
    finally:
        _STOP.reset(token)


def _left(timeout: float | None, timeout_error: str) -> float | None:
    """``timeout`` cut to the attempt's time left; raises httpcore's ``timeout_error`` once none is left."""
    stop = _STOP.get()
    if stop is None:
        return timeout
    left = stop - time.monotonic()
    if left <= 0:
        import httpcore

        raise getattr(httpcore, timeout_error)("the attempt's time ran out")
    return left if timeout is None else min(timeout, left)


class _Stream:
    """An httpcore network stream whose reads and writes end by the attempt's stop."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data: bytes = self._stream.read(max_bytes, _left(timeout, "ReadTimeout"))
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _left(timeout, "WriteTimeout"))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None) -> _Stream:
        return _Stream(self._stream.start_tls(ssl_context, server_hostname, _left(timeout, "ConnectTimeout")))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _Backend:
    """An httpcore sync network backend whose connections end by the attempt's stop."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> _Stream:
        left = _left(timeout, "ConnectTimeout")
        return _Stream(self._backend.connect_tcp(host, port, left, local_address, socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> _Stream:
        return _Stream(self._backend.connect_unix_socket(path, _left(timeout, "ConnectTimeout"), socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def bound_by_deadline(client: Any) -> None:
    """Wrap the network backend of each of ``client``'s httpx transports (its own and any proxy's); a custom
    transport without one (a test's mock) keeps httpx's per-read timeouts only."""
    wrapped = False
    for transport in (client._transport, *client._mounts.values()):
        pool: Any = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if backend is not None:
            if not isinstance(backend, _Backend):
                pool._network_backend = _Backend(backend)
            wrapped = True
    if not wrapped:
        logger.debug("no httpx transport to bound by the attempt's deadline; per-read timeouts apply")
