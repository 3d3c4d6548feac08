"""Real servers for the service tests: a ``rerank-plugins serve`` process, raw socket exchanges, hostile clients."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServeProcess:
    """A real ``rerank-plugins serve`` process on 127.0.0.1 with the given flags; stopped on exit."""

    def __init__(self, model: str, *flags: str, runtime: str = "torch") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "rerank_plugins.cli", "serve", "--model", model, "--port", str(self.port)]
        command += ["--runtime", runtime, "--precision", "fp32", *flags]
        self._log = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: access lines never block the server
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=self._log, text=True)
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"rerank-plugins serve did not start: {self.log()[-2000:]}")
            time.sleep(0.2)

    def log(self) -> str:
        """Everything the process has written to stderr so far (its log)."""
        self._log.flush()
        self._log.seek(0)
        return self._log.read()

    @property
    def pid(self) -> int:
        return self.process.pid

    def peak_rss_mb(self) -> float:
        """The process's peak resident memory (VmHWM) since it started or since ``reset_peak``."""
        return _status_kib(self.pid, "VmHWM") / 1024

    def rss_mb(self) -> float:
        return _status_kib(self.pid, "VmRSS") / 1024

    def reset_peak(self) -> None:
        with open(f"/proc/{self.pid}/clear_refs", "w") as control:
            control.write("5")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} is not in /proc/{pid}/status")


def raw_exchange(port: int, data: bytes, *, wait: float = 10.0, send_all: bool = True) -> tuple[bytes, bool]:
    """Send raw bytes to 127.0.0.1:port and read until the server closes (or ``wait`` s pass).

    Returns what came back and whether the server closed the connection.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        if send_all:
            sock.sendall(data)
        else:
            sock.send(data)
        received = b""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return received, False
            except ConnectionResetError:
                return received, True
            if not chunk:
                return received, True
            received += chunk
        return received, False


def _until_closed(port: int, first: bytes, more: Callable[[], bytes], interval: float, stop: threading.Event) -> bytes:
    """Send ``first``, then ``more()`` every ``interval`` s until the server answers or closes; its answer."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(first)
            sock.setblocking(False)
            received = b""
            for _ in range(100_000):
                if stop.is_set():
                    return received or b"stopped"
                try:
                    chunk = sock.recv(4096)
                    if not chunk:
                        return received
                    received += chunk
                except BlockingIOError:
                    pass
                try:
                    sock.send(more())
                except BlockingIOError:
                    pass
                time.sleep(interval)
            return received
    except OSError:
        return b"closed"


@contextmanager
def hostile_traffic(port: int, big_job: dict[str, Any], rounds: int = 100) -> Iterator[dict[str, list[bytes]]]:
    """Five hostile clients busy while the block runs (each stops after ``rounds`` tries or at the end):
    a declared 100 MB body sent in 64 kB pieces, an endless chunked body, headers dripped a byte at a
    time, and two clients that post ``big_job`` and leave after 0.5 s. Yields what each got back."""
    stop = threading.Event()
    seen: dict[str, list[bytes]] = {"declared": [], "chunked": [], "dripped": [], "abandoned": []}
    piece = b"x" * 65536
    head = b"POST /rerank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    body = json.dumps(big_job).encode()
    big = head + b"Content-Length: %d\r\n\r\n" % len(body) + body

    def declared() -> bytes:
        return _until_closed(port, head + b"Content-Length: 100000000\r\n\r\n", lambda: piece, 0.01, stop)

    def chunked() -> bytes:
        chunk = b"%x\r\n%s\r\n" % (len(piece), piece)
        return _until_closed(port, head + b"Transfer-Encoding: chunked\r\n\r\n", lambda: chunk, 0.01, stop)

    def dripped() -> bytes:
        return _until_closed(port, b"P", lambda: b"O", 0.2, stop)

    def abandoned() -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(big)
            stop.wait(0.5)
        return b"left"

    def keep(name: str, attack: Callable[[], bytes]) -> None:
        for _ in range(rounds):
            if stop.is_set():
                return
            seen[name].append(attack())
            stop.wait(0.2)

    attacks = [("declared", declared), ("chunked", chunked), ("dripped", dripped)]
    attacks += [("abandoned", abandoned), ("abandoned", abandoned)]
    threads = [threading.Thread(target=keep, args=attack, daemon=True) for attack in attacks]
    for thread in threads:
        thread.start()
    try:
        yield seen
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
