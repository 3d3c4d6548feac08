"""A real ``rerank-plugins serve`` process under hostile and careless traffic, over real sockets.

Each test names the finding of issue 18 it covers. The server runs the random-weight model of the
real MiniLM-L6 architecture with small limits, so every limit is reached quickly.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from rerank_plugins import Reranker
from rerank_plugins.remote import RemoteReranker, RemoteRerankError
from rerank_plugins.serving.batching import MAX_RETRY_AFTER
from tests.serving.servers import ServeProcess, hostile_traffic, raw_exchange
from tests.serving.shapes import SHAPES, request_in, scores_in

LONG_DOC = "a " * 600  # 600 tokens in 1.2 kB: each pair is cut to the full 512 model tokens


def long_docs(count: int) -> list[str]:
    """``count`` distinct long documents (the core scores a repeated pair only once)."""
    return [f"{i} {LONG_DOC}" for i in range(count)]


BATCH_TOKENS = 8192  # 16 full pairs per pass
QUEUED_TOKENS = 600_000
FLAGS = (
    "--max-body-bytes", "1048576",
    "--max-query-bytes", "4096",
    "--max-request-tokens", "200000",
    "--max-queued-tokens", str(QUEUED_TOKENS),
    "--max-batch-tokens", str(BATCH_TOKENS),
    "--max-headers", "50",
    "--max-header-bytes", "8192",
    "--header-timeout-s", "1",
    "--body-timeout-s", "2",
    "--keep-alive-s", "1",
)  # fmt: skip


@pytest.fixture(scope="module")
def server(random_model: str) -> Iterator[ServeProcess]:
    with ServeProcess(random_model, *FLAGS) as process:
        yield process


def info(server: ServeProcess) -> dict[str, object]:
    return httpx.get(f"{server.url}/info").json()  # type: ignore[no-any-return]


def wait_idle(server: ServeProcess, timeout: float = 60) -> dict[str, object]:
    """/info once nothing is queued or running (bounded: a hang fails the test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = info(server)
        if state["queued"] == {"requests": 0, "pairs": 0, "tokens": 0}:
            return state
        time.sleep(0.05)
    raise AssertionError(f"the service never went idle: {info(server)}")


def post_and_leave(port: int, body: dict[str, object], after: float) -> None:
    """Send a whole request, then close the connection ``after`` seconds later without reading."""
    data = json.dumps(body).encode()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        head = (
            f"POST /rerank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        sock.sendall(head.encode() + data)
        time.sleep(after)


# -- 1, 2: sizes refused before any work ---------------------------------------------------------------


@pytest.mark.slow
def test_a_20_mib_query_is_refused_from_its_headers_without_memory_growth(server: ServeProcess) -> None:
    """Findings 1 and 2: a 20 MiB query (or any body over the cap) is refused before it is read."""
    server.reset_peak()
    before = server.peak_rss_mb()
    head = b"POST /rerank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 20971540\r\n\r\n"
    answer, closed = raw_exchange(server.port, head + b'{"query": "' + b"x" * 65536, send_all=False)
    assert answer.startswith(b"HTTP/1.1 413") and b"the limit is 1048576 bytes" in answer and closed
    # a body sent chunked (no Content-Length) is cut while streaming
    streamed = httpx.post(f"{server.url}/rerank", content=iter([b'{"query": "'] + [b"x" * 65536] * 40))
    assert streamed.status_code == 413 and "exceeds the limit of 1048576" in streamed.json()["detail"]
    assert server.peak_rss_mb() - before < 100
    # a long query inside the body cap: bytes, then tokens
    too_long = httpx.post(f"{server.url}/rerank", json={"query": "é" * 3000, "documents": ["a"]})
    assert (
        too_long.status_code == 413 and too_long.json()["detail"] == "the query is 6000 bytes; the limit is 4096 bytes"
    )
    wordy = httpx.post(f"{server.url}/rerank", json={"query": "word " * 600, "documents": ["a"]})
    assert wordy.status_code == 413 and "the query is 600 tokens; the limit is 382 tokens" in wordy.json()["detail"]


def test_a_request_over_its_token_budget_is_refused_before_scoring(server: ServeProcess) -> None:
    """Finding 2: the per-request token budget (model tokens, after truncation) gives 413."""
    before = info(server)["batches_run"]
    answer = httpx.post(f"{server.url}/rerank", json={"query": "q", "documents": long_docs(400)}, timeout=60)
    assert answer.status_code == 413
    assert answer.json()["detail"].startswith("the request would run 204800 model tokens; the limit is 200000")
    assert info(server)["batches_run"] == before


# -- 3: abandoned work is dropped; retries are not scored twice ----------------------------------------


def test_work_for_a_client_that_has_gone_stops_at_the_next_pass(server: ServeProcess) -> None:
    """Finding 3: 390 long pairs need 25 passes; the client leaves after 1 s and the rest is dropped."""
    start = wait_idle(server)
    post_and_leave(server.port, {"query": "q", "documents": long_docs(390)}, after=1.0)
    end = wait_idle(server)
    passes = int(end["batches_run"]) - int(start["batches_run"])  # type: ignore[call-overload]
    assert int(end["abandoned"]) == int(start["abandoned"]) + 1  # type: ignore[call-overload]
    assert passes < 25, f"{passes} passes ran for a request whose client had gone"
    small = httpx.post(f"{server.url}/rerank", json={"query": "q", "documents": ["a", "b"]})
    assert small.status_code == 200 and len(small.json()["results"]) == 2


@pytest.mark.slow
def test_a_retry_with_the_same_idempotency_key_joins_the_running_job(server: ServeProcess) -> None:
    """Finding 3: two sends of one keyed request run its 3 passes once; unkeyed twins run 5."""
    body = {"query": "q", "documents": long_docs(40)}

    async def twice(headers: dict[str, str]) -> tuple[list[httpx.Response], int]:
        start = wait_idle(server)["batches_run"]
        async with httpx.AsyncClient(timeout=120) as client:
            answers = await asyncio.gather(
                *(client.post(f"{server.url}/rerank", json=body, headers=headers) for _ in range(2))
            )
        return list(answers), int(wait_idle(server)["batches_run"]) - int(start)  # type: ignore[call-overload]

    keyed, keyed_passes = asyncio.run(twice({"Idempotency-Key": "retry-1"}))
    plain, plain_passes = asyncio.run(twice({}))
    assert all(a.status_code == 200 for a in keyed + plain)
    assert keyed[0].json() == keyed[1].json()
    assert keyed_passes == 3 and plain_passes == 5

    async def conflicting() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=120) as client:
            first = asyncio.create_task(
                client.post(f"{server.url}/rerank", json=body, headers={"Idempotency-Key": "k"})
            )
            await asyncio.sleep(0.5)
            other = await client.post(
                f"{server.url}/rerank", json={**body, "query": "other"}, headers={"Idempotency-Key": "k"}
            )
            return [await first, other]

    first, other = asyncio.run(conflicting())
    assert first.status_code == 200 and other.status_code == 422 and "different request" in other.json()["detail"]


def test_a_client_that_times_out_and_retries_does_not_get_its_job_scored_twice(server: ServeProcess) -> None:
    """Finding 3: RemoteReranker's read timeout closes the connection, so the server drops that attempt."""
    start = wait_idle(server)
    client = RemoteReranker(server.url, timeout=1.0, max_retries=1, backoff=0.1)
    with pytest.raises(RemoteRerankError, match="did not answer after 2 attempts"):
        client.score("q", long_docs(390))
    end = wait_idle(server)
    assert int(end["abandoned"]) - int(start["abandoned"]) == 2  # type: ignore[call-overload]
    assert int(end["batches_run"]) - int(start["batches_run"]) < 25  # type: ignore[call-overload]


# -- 5: slow and idle connections are cut ---------------------------------------------------------------


@pytest.mark.slow
def test_idle_half_sent_and_dripping_connections_are_closed(server: ServeProcess) -> None:
    """Finding 5: header and body deadlines; 60 idle sockets are all closed by the server."""
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(60)]
    try:
        _, closed = raw_exchange(server.port, b"POST /rerank HTTP/1.1\r\nHost: x\r\n", wait=10)
        assert closed  # half-sent headers: closed after the 1 s header deadline
        answer, closed = raw_exchange(server.port, b"POST /rerank HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{")
        assert answer.startswith(b"HTTP/1.1 408") and closed  # a body that never completes
        chunked = b"POST /rerank HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as endless:
            endless.sendall(chunked)
            deadline = time.monotonic() + 10
            received = b""
            while time.monotonic() < deadline and b"\r\n\r\n" not in received:
                endless.sendall(b"1\r\nx\r\n")
                endless.settimeout(0.2)
                try:
                    received += endless.recv(4096)
                except TimeoutError:
                    pass
            assert received.startswith(b"HTTP/1.1 408")
        for sock in idle:
            sock.settimeout(10)
            assert sock.recv(1) == b""  # the server closed it
    finally:
        for sock in idle:
            sock.close()
    assert httpx.get(f"{server.url}/health").status_code == 200


# -- 8, 12: malformed bodies are 4xx, short, and free of server paths ----------------------------------


def test_malformed_bodies_get_short_422s_never_500(server: ServeProcess, random_model: str) -> None:
    """Findings 8 and 12: NaN and Infinity literals, huge wrong-typed inputs (lone surrogates are scored as
    ``?``, as the library scores them: ``test_service_hostile_traffic``)."""
    url = f"{server.url}/rerank"
    bodies = [
        '{"query": "q", "documents": ["a"], "top_n": NaN}',
        '{"query": "q", "documents": ["a"], "top_n": Infinity}',
        '{"query": "q", "documents": ["a", -Infinity]}',
        '{"query": ["' + "x" * 500_000 + '"], "documents": ["a"]}',
        '{"query": "q", "documents": ["a"]',
        "",
    ]
    for body in bodies:
        answer = httpx.post(url, content=body.encode(), headers={"content-type": "application/json"})
        assert answer.status_code == 422, (body[:60], answer.text[:200])
        assert len(answer.content) < 1000 and "Traceback" not in answer.text
    echoed = httpx.post(url, content=bodies[3].encode(), headers={"content-type": "application/json"})
    assert "... (500004 characters)" in echoed.json()["detail"][0]["input"]
    answer = httpx.post(url, json={"query": "q", "documents": ["a"], "return_documents": True}).json()
    assert answer["model"] == "random-ce0" and answer["results"][0]["document"] == {"text": "a"}
    assert random_model not in json.dumps(info(server))
    header, closed = raw_exchange(
        server.port, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
    )
    assert header.startswith(b"HTTP/1.1 431") and closed
    many = b"".join(b"X-%d: 1\r\n" % i for i in range(60))
    header, closed = raw_exchange(server.port, b"GET /health HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert header.startswith(b"HTTP/1.1 431") and closed
    huge_line, closed = raw_exchange(server.port, b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 2_000_000, send_all=False)
    assert huge_line.startswith(b"HTTP/1.1 400") and closed  # h11 refuses a header block past its buffer
    assert httpx.get(f"{server.url}/health").status_code == 200


# -- 11: Retry-After from the backlog -----------------------------------------------------------------


def test_retry_after_follows_the_real_backlog(server: ServeProcess) -> None:
    """Finding 11: with 6 x 195 long pairs queued, Retry-After is the backlog over the measured rate
    (within its bounds), once the first passes have measured it, however slow the machine."""
    wait_idle(server)
    body = {"query": "q", "documents": long_docs(195)}  # 99,840 model tokens each
    one_request = 195 * 512
    # The probe is refused once the queue (less the running pass) cannot take one more request; wait for
    # that, and for a measured rate, before sending it: on a slow machine the six are still being costed
    # long after they are sent, and a probe sent first would be admitted ahead of them.
    full = QUEUED_TOKENS - one_request + 2 * BATCH_TOKENS

    async def flood() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=300) as client:
            fill = [asyncio.create_task(client.post(f"{server.url}/rerank", json=body)) for _ in range(6)]
            state: dict[str, object] = {}
            for _ in range(1200):  # bounded: 60 s
                await asyncio.sleep(0.05)
                state = (await client.get(f"{server.url}/info")).json()
                if state["tokens_per_second"] and state["queued"]["tokens"] >= full:  # type: ignore[index]
                    break
            else:
                raise AssertionError(f"six requests never filled the queue: {state}")
            refused = await client.post(f"{server.url}/rerank", json=body)
            state = (await client.get(f"{server.url}/info")).json()
            for task in fill:
                task.cancel()
            await asyncio.gather(*fill, return_exceptions=True)
            return [refused, httpx.Response(200, json=state)]

    refused, state_answer = asyncio.run(flood())
    state = state_answer.json()
    assert refused.status_code == 503 and "tokens are waiting" in refused.json()["detail"]
    expected = min(MAX_RETRY_AFTER, state["queued"]["tokens"] / state["tokens_per_second"])
    retry_after = int(refused.headers["Retry-After"])
    assert retry_after >= 2 and abs(retry_after - expected) <= max(2.0, 0.5 * expected)
    wait_idle(server, timeout=120)


# -- 4: shutdown -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sigterm_finishes_connected_work_drops_abandoned_work_and_exits_within_the_drain(random_model: str) -> None:
    """Finding 4: 3 abandoned large jobs, one connected small request and one connected job of 25 passes
    (about 40 s here), far longer than the 8 s drain: SIGTERM answers the small one, cuts the long one at
    the drain, and the process exits."""
    with ServeProcess(random_model, *FLAGS, "--drain-timeout-s", "8") as server:
        leavers = [
            threading.Thread(
                target=post_and_leave, args=(server.port, {"query": f"q{i}", "documents": long_docs(390)}, 0.3)
            )
            for i in range(3)
        ]
        for thread in leavers:
            thread.start()
        for thread in leavers:
            thread.join()
        answers: dict[str, object] = {}

        def ask(name: str, documents: list[str]) -> None:
            try:
                answers[name] = httpx.post(
                    f"{server.url}/rerank", json={"query": name, "documents": documents}, timeout=120
                ).status_code
            except httpx.TransportError as error:
                answers[name] = type(error).__name__

        small = threading.Thread(target=ask, args=("small", ["a", "b", "c"]))
        endless = threading.Thread(target=ask, args=("long", long_docs(390)))
        endless.start()
        time.sleep(0.3)
        small.start()
        time.sleep(0.3)
        server.process.send_signal(signal.SIGTERM)
        code = server.process.wait(timeout=30)  # drain 8 s + one pass; a hang fails here
        small.join(10)
        endless.join(10)
    assert code in (0, -signal.SIGTERM) and answers["small"] == 200  # uvicorn re-raises SIGTERM once drained
    assert answers["long"] != 200  # it could not finish within the drain bound


@pytest.mark.slow
def test_sigterm_under_mixed_load_loses_no_accepted_request(random_model: str, served_core: Reranker) -> None:
    """SIGTERM while 24 clients send requests in all five API shapes, each on a new connection: every
    request the service took (its access log) reached its client whole and correct, requests in flight
    at the signal were still answered, the rest were refused at the door, and the process exits."""
    local = served_core
    outcomes: list[tuple[str, str, str, list[str], object, float]] = []
    stop = threading.Event()

    def client(url: str, number: int) -> None:
        for turn in range(10_000):
            if stop.is_set():
                return
            shape, rid = SHAPES[(number + turn) % len(SHAPES)], f"c{number}-{turn}"
            query, documents = f"claim {number} {turn}", [f"passage {number} {turn} {k}" for k in range(8)]
            path, body = request_in(shape, query, documents)
            try:
                answer = httpx.post(f"{url}{path}", json=body, headers={"X-Request-Id": rid}, timeout=60)
                outcome: object = answer.json() if answer.status_code == 200 else answer.status_code
            except httpx.TransportError as error:
                outcome = type(error).__name__
            outcomes.append((rid, shape, query, documents, outcome, time.monotonic()))

    with ServeProcess(random_model, *FLAGS, "--drain-timeout-s", "10") as server:
        clients = [threading.Thread(target=client, args=(server.url, n), daemon=True) for n in range(24)]
        for thread in clients:
            thread.start()
        time.sleep(2.0)
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        code = server.process.wait(timeout=30)
        stop.set()
        for thread in clients:
            thread.join(60)
        log = server.log()
    taken = {rid: int(status) for status, rid in re.findall(r'" (\d{3}) [\d.]+ ms id=(c\d+-\d+)', log)}
    answered = [row for row in outcomes if isinstance(row[4], (dict, list))]
    assert code in (0, -signal.SIGTERM)
    assert len(answered) >= 24 and any(row[5] > signalled for row in answered), "nothing in flight was finished"
    for rid, shape, query, documents, outcome, _ in outcomes:
        if isinstance(outcome, (dict, list)):
            kind, got = scores_in(shape, outcome, len(documents))
            want = [getattr(row, kind) for row in sorted(local.rank(query, documents), key=lambda row: row.index)]
            assert got == pytest.approx(want, abs=1e-4), rid
        else:  # refused at the door (closed socket, or a 503 while draining), never taken and then lost
            assert outcome in ("ConnectError", "RemoteProtocolError", "ReadError", 503), (rid, outcome)
            assert taken.get(rid) in (None, 503), f"{rid} was answered {taken.get(rid)} but its client got {outcome}"
    assert set(taken) >= {row[0] for row in answered}


# -- all of it at once ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_200_clients_are_answered_correctly_beside_5_hostile_ones(random_model: str, served_core: Reranker) -> None:
    """200 concurrent well-behaved clients, spread over the five API shapes, beside five hostile ones (a
    100 MB body, an endless chunked body, dripped headers, two abandoned 390-pair jobs): every answer
    equals the local core's, the hostile ones are all refused or dropped, and the peak memory of a fresh
    service stays under 1.5 GB."""
    local = served_core
    topics = ["statins and cholesterol", "malaria vectors", "vitamin D and bone", "sleep and memory"]
    queries = [f"claim {i} on {topics[i % 4]}" for i in range(200)]
    documents = [[f"{topic} finding {i}" for topic in topics] + [f"passage {i}"] for i in range(200)]
    ranked = [local.rank(q, docs) for q, docs in zip(queries, documents, strict=True)]
    expected = {
        kind: [[getattr(row, kind) for row in sorted(rows, key=lambda row: row.index)] for rows in ranked]
        for kind in ("score", "relevance_score")
    }

    async def well_behaved(url: str) -> list[tuple[str, list[float]]]:
        async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=200)) as client:

            async def one(i: int) -> tuple[str, list[float]]:
                shape = SHAPES[i % len(SHAPES)]
                path, body = request_in(shape, queries[i], documents[i])
                answer = await client.post(f"{url}{path}", json=body)
                answer.raise_for_status()
                return scores_in(shape, answer.json(), len(documents[i]))

            return await asyncio.gather(*(one(i) for i in range(200)))

    # 200 clients in this (large, busy) test process may be paused past a 1 s header deadline between
    # connecting and sending; 5 s still cuts the dripped headers several times over
    with ServeProcess(random_model, *FLAGS, "--header-timeout-s", "5") as server:
        with hostile_traffic(server.port, {"query": "q", "documents": long_docs(390)}) as seen:
            time.sleep(1.0)  # the attacks are under way
            try:
                answers = asyncio.run(well_behaved(server.url))
            except httpx.TransportError as error:
                pytest.fail(f"a well-behaved client got {error!r}; the service's log ends:\n{server.log()[-4000:]}")
            cut_by = time.monotonic() + 15  # on a fast machine the clients finish before the first 5 s cut
            while b"" not in seen["dripped"] and time.monotonic() < cut_by:
                time.sleep(0.1)
        peak = server.peak_rss_mb()
        abandoned = int(wait_idle(server)["abandoned"])  # type: ignore[call-overload]
        log = server.log()
    for i, (kind, got) in enumerate(answers):
        assert got == pytest.approx(expected[kind][i], abs=1e-4), f"client {i} ({SHAPES[i % len(SHAPES)]})"
    for refused in (seen["declared"], seen["chunked"]):  # a 413, or a reset once the server closed on them
        assert any(b.startswith(b"HTTP/1.1 413") for b in refused)
        assert all(b.startswith(b"HTTP/1.1 413") or b in (b"closed", b"stopped") for b in refused), [
            b[:60] for b in refused if not b.startswith(b"HTTP/1.1 413")
        ]
    assert seen["dripped"] and all(b in (b"", b"closed", b"stopped") for b in seen["dripped"]), seen["dripped"]
    assert b"" in seen["dripped"] and "request headers were not complete within 5 s" in log  # cut by the service
    assert len(seen["abandoned"]) >= 2
    assert peak < 1536, f"peak RSS {peak:.0f} MB"
    assert abandoned >= 2
