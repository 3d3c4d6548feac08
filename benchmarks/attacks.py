"""The attacks of issue 27 on a rerank service, each a loop run in its own process until told to stop.

Each takes the service's port and a ``multiprocessing`` event; it repeats its attack (reconnecting when
the service cuts it) until the event is set. ``hostile_load.py`` runs them one at a time and all at once.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from multiprocessing.synchronize import Event
from typing import Any

MiB = 2**20
POST = b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=30)


def _send_and_drain(port: int, data: bytes) -> None:
    """Send a whole request and read until the service answers or closes."""
    try:
        with _connect(port) as sock:
            sock.sendall(data)
            while sock.recv(65536):
                pass
    except OSError:
        pass


def wrong_items(port: int, stop: Event) -> None:
    """Item 1: 8 MiB of wrong-typed list items (``[1, 1, ...]``) to ``/v2/rerank``, again and again."""
    body = b'{"query": "q", "documents": [' + b"1, " * ((8 * MiB - 64) // 3) + b"1]}"
    head = POST % b"/v2/rerank" + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    while not stop.is_set():
        _send_and_drain(port, head + body)


def idle_sockets(port: int, stop: Event, count: int = 2000) -> None:
    """Item 2: ``count`` connections that send nothing, re-opened as the service closes them."""
    open_: list[socket.socket] = []
    while not stop.is_set():
        open_ = [sock for sock in open_ if _alive(sock)]
        while len(open_) < count and not stop.is_set():
            try:
                open_.append(_connect(port))
            except OSError:
                break
        time.sleep(0.2)
    for sock in open_:
        sock.close()


def _alive(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


def slow_uploads(port: int, stop: Event, count: int = 8) -> None:
    """Item 3: ``count`` bodies of 8 MiB sent but for their last byte, re-sent when the service cuts them."""
    size = 8 * MiB
    data = POST % b"/rerank" + b"Content-Length: %d\r\n\r\n" % size + b"x" * (size - 1)
    held: list[socket.socket] = []
    while not stop.is_set():
        held = [sock for sock in held if _alive(sock)]
        while len(held) < count and not stop.is_set():
            try:
                sock = _connect(port)
                sock.sendall(data)
                held.append(sock)
            except OSError:
                break
        time.sleep(0.2)
    for sock in held:
        sock.close()


def tiny_chunks(port: int, stop: Event) -> None:
    """Item 4: a chunked body of 1-byte chunks, streamed as fast as the service takes it."""
    piece = b"1\r\nx\r\n" * 2000
    while not stop.is_set():
        try:
            with _connect(port) as sock:
                sock.sendall(POST % b"/rerank" + b"Transfer-Encoding: chunked\r\n\r\n")
                while not stop.is_set():
                    sock.sendall(piece)
        except OSError:
            pass


def costly_tokenising(port: int, stop: Event) -> None:
    """Item 5: 8 MB of documents behind an over-long query, and over the token budget, in turn."""
    documents = [f"{i} " + "sleep and memory " * 450 for i in range(1000)]
    bodies = [
        json.dumps({"query": "word " * 1500, "documents": documents}).encode(),
        json.dumps({"query": "q", "documents": documents}).encode(),
    ]
    turn = 0
    while not stop.is_set():
        body = bodies[turn % 2]
        turn += 1
        _send_and_drain(port, POST % b"/rerank" + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)


def smuggling(port: int, stop: Event) -> None:
    """Item 6: Content-Length and Transfer-Encoding together, with a request hidden behind the body."""
    hidden = b"POST /rerank HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
    data = POST % b"/rerank" + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + hidden
    while not stop.is_set():
        _send_and_drain(port, data)


def leave_mid_body(port: int, stop: Event) -> None:
    """Item 7: a request whose client hangs up after part of its body."""
    data = POST % b"/rerank" + b'Content-Length: 100000\r\n\r\n{"query": "q", "docu'
    while not stop.is_set():
        try:
            with _connect(port) as sock:
                sock.sendall(data)
                time.sleep(0.05)
        except OSError:
            pass


ATTACKS: dict[str, Callable[[int, Event], Any]] = {
    "wrong_items": wrong_items,
    "idle_sockets": idle_sockets,
    "slow_uploads": slow_uploads,
    "tiny_chunks": tiny_chunks,
    "costly_tokenising": costly_tokenising,
    "smuggling": smuggling,
    "leave_mid_body": leave_mid_body,
}
