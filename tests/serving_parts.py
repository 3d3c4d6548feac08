"""Helpers for the service tests."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

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
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"rerank-plugins serve did not start: {self.process.stderr.read()[-2000:]}")
            time.sleep(0.2)

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
