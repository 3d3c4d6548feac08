"""RemoteReranker against a hostile real HTTP server on 127.0.0.1: bad answers never corrupt a ranking.

Each test names the finding of issue 18 it covers; the server is a small threaded socket server that
answers whatever the test scripts, as slowly as it likes.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import gzip
import json
import logging
import socket
import socketserver
import struct
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.utils import formatdate
from typing import Any

import pytest

from rerank_plugins.remote import RemoteReranker, RemoteRerankError
from rerank_plugins.remote.client import MAX_RETRY_AFTER, retry_after_seconds

Answer = Callable[[socket.socket], None]


def http(status: int, body: bytes, headers: dict[str, str] | None = None) -> Answer:
    """A complete answer with ``Content-Length``."""

    def answer(sock: socket.socket) -> None:
        lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Content-Type: application/json"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    return answer


def rows(*results: dict[str, Any]) -> Answer:
    return http(200, json.dumps({"model": "m", "results": list(results), "usage": {"pairs": 2}}).encode())


def row(index: Any, score: Any = 1.0, relevance: Any = 0.5, **extra: Any) -> dict[str, Any]:
    return {"index": index, "score": score, "relevance_score": relevance, **extra}


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: Any = self.server
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.request.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0
        )
        while len(body) < length:
            body += self.request.recv(65536)
        server.heads.append(head.decode("latin-1").lower())
        server.requests.append(json.loads(body))
        answer = server.answers[min(len(server.requests), len(server.answers)) - 1]
        try:
            answer(self.request)
        except OSError:
            pass  # the client gave up on us, as it should


@contextmanager
def hostile(*answers: Answer) -> Iterator[Any]:
    """A server on 127.0.0.1 that gives ``answers`` in turn (the last one again for every later request)."""
    server: Any = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.answers, server.requests, server.heads = list(answers), [], []
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def finishes(call: Callable[[], Any], within: float = 20.0) -> BaseException | Any:
    """Run ``call`` in a thread; its result or exception, or a test failure if it is still blocked."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as error:  # noqa: B036 - the test inspects whatever ended the call
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(within)
    assert not thread.is_alive(), "the client call is still blocked"
    return outcome[0]


BAD_ANSWERS = {
    "NaN score": rows(row(0, float("nan")), row(1, 3.0)),
    "Infinity score": rows(row(0, float("inf")), row(1)),
    "relevance 2.5": rows(row(0, relevance=2.5), row(1)),
    "relevance -7": rows(row(0, relevance=-7), row(1)),
    "score as a string": rows(row(0, "3.0"), row(1)),
    "negative index": rows(row(-1), row(1)),
    "float index": rows(row(0.0), row(1)),
    "bool index": rows(row(True), row(0)),
    "index out of range": rows(row(0), row(2)),
    "index twice": rows(row(0), row(0)),
    "missing index": rows({"score": 1.0, "relevance_score": 0.5}, row(1)),
    "missing score": rows({"index": 0, "relevance_score": 0.5}, row(1)),
    "a row that is a list": rows([0, 1.0], row(1)),  # type: ignore[arg-type]
    "negative truncated_tokens": rows(row(0, truncated_tokens=-1), row(1)),
    "span past the document": rows(row(0, span=[0, 2]), row(1)),
    "span backwards": rows(row(0, span=[1, 0]), row(1)),
    "span of floats": rows(row(0, span=[0.0, 1.0]), row(1)),
    "span not a pair": rows(row(0, span=[0, 1, 1]), row(1)),
    "too few rows": rows(row(0)),
    "results not a list": http(200, b'{"results": {"0": 1}}'),
    "a bare list": http(200, b"[1, 2]"),
    "not JSON": http(200, b"<html>oops</html>"),
    "empty body": http(200, b""),
}


@pytest.mark.parametrize("case", list(BAD_ANSWERS))
def test_malformed_answers_raise_remote_rerank_error_naming_the_server(case: str) -> None:
    """Findings 6 and 10: NaN, infinities, out-of-range relevance, strings, bad indices, bad shapes."""
    with hostile(BAD_ANSWERS[case]) as server:
        client = RemoteReranker(server.url, max_retries=0)
        with pytest.raises(RemoteRerankError, match=f"rerank service at {server.url}"):
            client.rank("q", ["a", "b"])
        with pytest.raises(RemoteRerankError):
            asyncio.run(client.arank("q", ["a", "b"]))
        assert len(server.requests) == 2  # a malformed answer is not retried


def test_a_valid_answer_still_ranks_by_score() -> None:
    with hostile(rows(row(1, 1.0, 0.7), row(0, 3.0, 0.95, truncated_tokens=4))) as server:
        ranked = RemoteReranker(server.url).rank("q", ["a", "b"])
    assert [(r.index, r.score, r.truncated_tokens) for r in ranked] == [(0, 3.0, 4), (1, 1.0, 0)]
    with hostile(rows(row(1, 1.0, 0.7, span=[1, 3]), row(0, 3.0, 0.95))) as server:
        ranked = RemoteReranker(server.url).rank("q", ["a", "b c"])
    assert [(r.span, r.passage) for r in ranked] == [(None, "a"), ((1, 3), " c")]


def drip(interval: float) -> Answer:
    """Headers at once, then one byte of a never-ending body every ``interval`` seconds."""

    def answer(sock: socket.socket) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        for _ in range(200):
            sock.sendall(b" ")
            time.sleep(interval)

    return answer


def test_a_dripping_server_cannot_hold_a_call_past_its_timeout() -> None:
    """Finding 7: one byte every 0.2 s never trips a read timeout; the attempt's own clock does."""
    with hostile(drip(0.2)) as server:
        client = RemoteReranker(server.url, timeout=1.0, max_retries=0)
        error = finishes(lambda: client.score("q", ["a"]), within=8)  # the drip would take 40 s
        assert isinstance(error, RemoteRerankError) and "not complete within 1 s" in str(error)
        error = finishes(lambda: asyncio.run(client.ascore("q", ["a"])), within=8)
        assert isinstance(error, RemoteRerankError) and "not complete within 1 s" in str(error)


def endless_chunks(sock: socket.socket) -> None:
    sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * 65536
    for _ in range(16384):  # 1 GiB if nobody stops reading
        sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))


def test_a_huge_answer_is_dropped_at_the_cap_not_held_in_memory() -> None:
    """Finding 7: a declared 1 GB answer is refused from its header; a streamed one at 1 MiB."""

    def lying(sock: socket.socket) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n{}")

    for answer, message in ((lying, "1000000000-byte answer"), (endless_chunks, "more than 1048576 bytes")):
        with hostile(answer) as server:
            client = RemoteReranker(server.url, max_retries=0, max_answer_bytes=2**20)
            error = finishes(lambda client=client: client.score("q", ["a"]))
            assert isinstance(error, RemoteRerankError) and message in str(error), error
            error = finishes(lambda client=client: asyncio.run(client.ascore("q", ["a"])))
            assert isinstance(error, RemoteRerankError) and message in str(error), error


@pytest.mark.parametrize("value", ["-5", "nan", "inf", "-inf", "soon", "", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_any_retry_after_value_is_handled_sanely_on_both_paths(value: str) -> None:
    """Finding 9: negative, NaN, infinite, garbage and past-date Retry-After values fall back to the
    back-off (sync and async alike) and the retry succeeds."""
    busy = http(503, b'{"detail": "busy"}', {"Retry-After": value})
    good = rows(row(0, 2.0, 0.9))
    with hostile(busy, good) as server:
        client = RemoteReranker(server.url, backoff=0.01)
        assert finishes(lambda: client.score("q", ["a"])) == [2.0]
    with hostile(busy, good) as server:
        client = RemoteReranker(server.url, backoff=0.01)
        assert finishes(lambda: asyncio.run(client.ascore("q", ["a"]))) == [2.0]


def test_a_retry_after_past_the_deadline_ends_the_call_at_once() -> None:
    """Findings 7 and 9: no sleeping 100 s when the call has 3 s left."""
    with hostile(http(503, b"{}", {"Retry-After": "100"})) as server:
        client = RemoteReranker(server.url, deadline=3.0)
        error = finishes(lambda: client.score("q", ["a"]), within=10)
        assert isinstance(error, RemoteRerankError) and "the next try would be in 100.0 s" in str(error)
        assert len(server.requests) == 1


def test_retry_after_seconds_reads_delta_seconds_and_http_dates() -> None:
    now = time.time()
    assert retry_after_seconds("2.5") == 2.5 and retry_after_seconds("0") == 0.0
    assert retry_after_seconds("99999") == MAX_RETRY_AFTER
    assert retry_after_seconds(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, abs=1)
    assert retry_after_seconds(formatdate(now - 30, usegmt=True), now=now) == 0.0
    for bad in (None, "nan", "inf", "soon", "-inf"):
        assert retry_after_seconds(bad) in (None, 0.0)
    assert retry_after_seconds("-5") == 0.0


# -- 8: compression bombs ----------------------------------------------------------------------------


def gzip_of_zeros(mib: int) -> bytes:
    """A gzip member of ``mib`` MiB of zeros, built from one compressed MiB (a full flush makes every block's
    bytes the same) so the test never holds the expanded data."""
    block = bytes(2**20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    again = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    assert first == again
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(block, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    return header + first * mib + deflate.flush() + struct.pack("<II", crc, (mib << 20) & 0xFFFFFFFF)


@functools.cache
def gzip_bomb() -> bytes:
    """``Content-Encoding: gzip, gzip``: about 2.5 kB on the wire, 1 GiB of zeros once decoded twice."""
    return gzip.compress(gzip_of_zeros(1024), 9)


def ascore(client: RemoteReranker) -> list[float]:
    return asyncio.run(client.ascore("q", ["a"]))


def sscore(client: RemoteReranker) -> list[float]:
    return client.score("q", ["a"])


@pytest.mark.parametrize("call", [sscore, ascore], ids=["sync", "async"])
def test_a_gzip_bomb_is_refused_unread_and_costs_no_memory(call: Callable[[RemoteReranker], Any]) -> None:
    """Finding 8: 2.5 kB that decode to 1 GiB took the client past 1 GB before the 16 MiB cap fired. The
    client asks for ``Accept-Encoding: identity`` and refuses any other encoding without decoding a byte."""
    bomb = gzip_bomb()
    assert len(bomb) < 4000
    with hostile(http(200, bomb, {"Content-Encoding": "gzip, gzip"})) as server:
        client = RemoteReranker(server.url, max_retries=0)
        tracemalloc.start()
        try:
            with pytest.raises(RemoteRerankError) as raised:
                call(client)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 50 * 2**20, f"the client held {peak / 2**20:.0f} MiB"
    assert f"rerank service at {server.url} answered 200 with a body in Content-Encoding 'gzip, gzip'" in str(
        raised.value
    )
    assert "accept-encoding: identity" in server.heads[0]


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd", "identity, gzip", "x-made-up"])
def test_any_content_encoding_but_identity_is_refused_on_both_paths(encoding: str) -> None:
    """Finding 8: whatever the encoding (zstd, brotli, one httpx does not know), the body is never decoded."""
    body = json.dumps({"results": [row(0, 2.0, 0.9)]}).encode()
    with hostile(http(200, body, {"Content-Encoding": encoding})) as server:
        client = RemoteReranker(server.url, max_retries=0)
        for call in (sscore, ascore):
            with pytest.raises(RemoteRerankError, match=f"{server.url} answered 200 with a body in Content-Encoding"):
                call(client)


def test_identity_answers_are_read_and_a_compressed_503_is_still_retried() -> None:
    busy = http(503, gzip.compress(b'{"detail": "busy"}'), {"Content-Encoding": "gzip", "Retry-After": "0"})
    good = http(200, json.dumps({"results": [row(0, 2.0, 0.9)]}).encode(), {"Content-Encoding": "identity"})
    with hostile(busy, good, busy, good) as server:
        client = RemoteReranker(server.url, backoff=0.01)
        assert sscore(client) == [2.0] and ascore(client) == [2.0]
        assert len(server.requests) == 4


# -- 9: the sync path keeps the attempt's deadline ---------------------------------------------------


def dripped_headers(sock: socket.socket) -> None:
    """A status line, then one header byte every 0.2 s for a minute: every read gets data, none times out."""
    sock.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    for _ in range(300):
        sock.sendall(b"a")
        time.sleep(0.2)


def endless_continue(sock: socket.socket) -> None:
    """``100 Continue`` every 1.5 s for a minute, and never the answer."""
    for _ in range(40):
        sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        time.sleep(1.5)


@pytest.mark.slow
@pytest.mark.parametrize("stall", [dripped_headers, endless_continue], ids=["dripped headers", "100 Continue"])
def test_a_stalling_server_cannot_hold_a_sync_call_past_its_timeout(stall: Answer) -> None:
    """Finding 9: httpx's read timeout is per read, so a ``timeout=3`` sync call was held for a minute (the
    async path ended at 3 s); now each socket operation ends by the attempt's stop, on both paths."""
    with hostile(stall, stall, rows(row(0, 2.0, 0.9))) as server:
        client = RemoteReranker(server.url, timeout=3, max_retries=0)
        started = time.monotonic()
        error = finishes(lambda: sscore(client), within=10)
        took = time.monotonic() - started
        assert isinstance(error, RemoteRerankError) and "not complete within 3 s" in str(error), error
        assert took < 4.0, f"the sync call took {took:.1f} s"
        fast = RemoteReranker(server.url, timeout=1, max_retries=0)
        error = finishes(lambda: ascore(fast), within=5)
        assert isinstance(error, RemoteRerankError) and "not complete within 1 s" in str(error), error
        assert sscore(client) == [2.0]  # the stalled connection was dropped; the pool still works


# -- 10: answers nested past the parser's depth; text that is not valid Unicode ----------------------

DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize("status", [200, 422, 500])
def test_a_deeply_nested_answer_is_a_clear_error_not_a_recursion_error(status: int) -> None:
    """Finding 10: ``[[[...]]]`` 100,000 deep raised a bare ``RecursionError`` from ``json.loads``."""
    expected = ValueError if status == 422 else RemoteRerankError
    for body in (DEEP, b'{"detail": ' + DEEP + b"}"):
        with hostile(http(status, body)) as server:
            client = RemoteReranker(server.url, max_retries=0)
            for call in (sscore, ascore):
                with pytest.raises(expected, match=f"rerank service at {server.url} answered {status}"):
                    call(client)


# -- 12: credentials in the URL ----------------------------------------------------------------------


def test_credentials_in_the_url_are_sent_but_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    """Finding 12: ``http://user:pass@host`` leaked into errors, retry warnings, ``repr``, ``model_name``,
    ``options()`` and the adapters' serialised forms. They are sent as HTTP Basic auth, and shown nowhere."""
    from langchain_core.documents import Document
    from langchain_core.load import dumps
    from llama_index.core.schema import NodeWithScore, TextNode

    from rerank_plugins.langchain import RerankCompressor
    from rerank_plugins.llama_index import RerankPostprocessor

    busy, broken = http(503, b'{"detail": "busy"}'), http(500, b'{"detail": "broken"}')
    with hostile(busy, broken, busy, broken) as server:
        url = server.url.replace("http://", "http://alice:pw-5ecret@")
        client = RemoteReranker(url, backoff=0.01)
        compressor = RerankCompressor(url=url, top_n=1)
        postprocessor = RerankPostprocessor(url=url, top_n=1)
        errors = []
        with caplog.at_level(logging.INFO):  # INFO too: httpx logs each request's URL
            for call in (
                lambda: sscore(client),
                lambda: ascore(client),
                lambda: compressor.compress_documents([Document(page_content="a")], "q"),
                lambda: postprocessor.postprocess_nodes([NodeWithScore(node=TextNode(text="a"))], query_str="q"),
            ):
                with pytest.raises(RemoteRerankError) as raised:
                    call()
                errors.append(str(raised.value))
    assert all(f"rerank service at {server.url} answered 500" in error for error in errors), errors
    assert "retrying" in caplog.text and "HTTP Request" in caplog.text
    shown = [*errors, caplog.text, repr(client), client.model_name, client.url, json.dumps(client.options())]
    shown += [repr(compressor), json.dumps(compressor.model_dump()), dumps(compressor), repr(compressor.core)]
    shown += [repr(postprocessor), json.dumps(postprocessor.to_dict()), postprocessor.to_json()]
    assert not [text for text in shown if "pw-5ecret" in text or "alice" in text]
    basic = base64.b64encode(b"alice:pw-5ecret").decode().lower()
    assert all(f"authorization: basic {basic}" in head for head in server.heads)  # still sent, every time
