"""Running the service in a background thread of this process: notebooks, tests and benchmarks."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rerank_plugins._optional import require
from rerank_plugins.serving.limits import ServiceLimits
from rerank_plugins.serving.server import make_server, server_config

__all__ = ["serve_in_background"]


@contextmanager
def serve_in_background(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    timeout: float = 60.0,
    limits: ServiceLimits | None = None,
    wait_ready: bool = True,
) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a daemon thread (``port=0``: a free port); yields the base URL once
    the app is ready (its model warm), or as soon as it listens with ``wait_ready=False``.

    ``limits`` sets the connection limits (header deadline, keep-alive, connections), as ``serve`` does.
    """
    require("uvicorn", "serve")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    server = make_server(server_config(app, limits or ServiceLimits(), host=host, port=bound))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    lifecycle = getattr(getattr(app, "state", None), "lifecycle", None)
    while not server.started or (wait_ready and lifecycle is not None and not lifecycle.ready):
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError(f"the rerank service did not start on {host}:{bound}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=timeout)
        sock.close()
