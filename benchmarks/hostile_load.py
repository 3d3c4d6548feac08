"""The rerank service under hostile traffic, with its default limits: refusals, memory, latency, shutdown.

Starts a real ``rerank-plugins serve`` process (the SciFact model, torch fp32 by default) and measures:
time and peak-memory growth to refuse a 20 MiB query and 100 MB bodies; how fast the worker is freed
from the largest admissible job once its client leaves; 200 concurrent clients alone and beside five
hostile ones (p50/p95, peak RSS, every answer checked against the local core); SIGTERM with a queue of
abandoned jobs. Run from the repository root:

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/hostile_load.py --model ../shared/models/minilm-l6-scifact-ce
"""

from __future__ import annotations

import argparse
import asyncio
import json
import select
import signal
import socket
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' real-process helpers

from serve_load import workload  # noqa: E402

from rerank_plugins import Reranker  # noqa: E402
from tests.serving_parts import ServeProcess, hostile_traffic  # noqa: E402

MiB = 2**20


def refusal(server: ServeProcess, head: bytes, piece: bytes, pieces: int) -> dict[str, Any]:
    """Send ``head`` then ``pieces`` x ``piece`` until the server answers; seconds to its answer, RSS growth."""
    server.reset_peak()
    before = server.peak_rss_mb()
    answer = b""
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        try:
            sock.sendall(head)
            for _ in range(pieces):
                if select.select([sock], [], [], 0)[0]:
                    break  # the server has answered (or closed)
                sock.sendall(piece)
        except OSError:
            pass  # it closed on us while we were still sending
        while b"\r\n\r\n" not in answer:
            try:
                chunk = sock.recv(4096)
            except OSError:
                break
            if not chunk:
                break
            answer += chunk
    seconds = time.perf_counter() - started
    return {
        "status": answer.split(b" ")[1].decode() if answer else "closed",
        "seconds": round(seconds, 3),
        "peak_rss_growth_mb": round(server.peak_rss_mb() - before, 1),
    }


def abandoned_job(server: ServeProcess, documents: list[str]) -> dict[str, Any]:
    """The largest admissible job, left after 2 s: passes run after leaving, and a small request's wait."""
    body = json.dumps({"query": "sleep deprivation and memory", "documents": documents}).encode()
    head = b"POST /rerank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(head % len(body) + body)
        time.sleep(2.0)
        passes_at_leave = httpx.get(f"{server.url}/info").json()["batches_run"]
    left = time.perf_counter()
    small = httpx.post(f"{server.url}/rerank", json={"query": "q", "documents": ["a", "b"]}, timeout=120)
    small_seconds = time.perf_counter() - left
    while httpx.get(f"{server.url}/info").json()["queued"]["requests"]:
        time.sleep(0.05)
    state = httpx.get(f"{server.url}/info").json()
    return {
        "pairs": len(documents),
        "body_mb": round(len(body) / MiB, 2),
        "passes_after_leaving": state["batches_run"] - passes_at_leave - 1,  # minus the small request's
        "small_request_seconds_after_leaving": round(small_seconds, 2),
        "small_status": small.status_code,
        "abandoned": state["abandoned"],
    }


async def clients(url: str, requests: list[tuple[str, list[str]]]) -> dict[str, Any]:
    latencies: list[float] = []

    async def one(client: httpx.AsyncClient, query: str, documents: list[str]) -> list[float]:
        started = time.perf_counter()
        answer = await client.post(f"{url}/rerank", json={"query": query, "documents": documents})
        latencies.append(time.perf_counter() - started)
        answer.raise_for_status()
        scores = {row["index"]: row["score"] for row in answer.json()["results"]}
        return [scores[i] for i in range(len(documents))]

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=len(requests))) as client:
        scores = await asyncio.gather(*(one(client, q, d) for q, d in requests))
    quantiles = statistics.quantiles(latencies, n=20)
    return {
        "seconds": time.perf_counter() - started,
        "p50_ms": round(statistics.median(latencies) * 1000),
        "p95_ms": round(quantiles[18] * 1000),
        "scores": scores,
    }


def shutdown(model: str, flags: list[str], documents: list[str], connected: bool) -> dict[str, Any]:
    """SIGTERM with four abandoned large jobs queued (and one connected one, if asked): seconds to exit."""
    with ServeProcess(model, *flags) as server:
        body = json.dumps({"query": "q", "documents": documents}).encode()
        head = b"POST /rerank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        sockets = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(4)]
        for sock in sockets:
            sock.sendall(head % len(body) + body)
        time.sleep(3)
        for sock in sockets:
            sock.close()
        asker = None
        if connected:
            asker = threading.Thread(
                target=lambda: httpx.post(f"{server.url}/rerank", content=body, timeout=600), daemon=True
            )
            asker.start()
            time.sleep(1)
        started = time.perf_counter()
        server.process.send_signal(signal.SIGTERM)
        code = server.process.wait(timeout=600)
        return {"seconds_to_exit": round(time.perf_counter() - started, 2), "exit_code": code}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="../shared/models/minilm-l6-scifact-ce")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--documents", type=int, default=10, help="passages per well-behaved request")
    parser.add_argument("--out", default="benchmarks/results/hostile_load.json")
    args = parser.parse_args()
    flags = ["--log-level", "error"]
    passage = "Sleep deprivation impairs hippocampal memory consolidation in adult mice. " * 100  # ~7.6 kB
    largest = [f"{i} {passage}" for i in range(1000)]  # 1000 pairs x 256 tokens: just under the token budget
    results: dict[str, Any] = {"model": args.model, "limits": "defaults", "runtime": "torch fp32"}
    with ServeProcess(args.model, *flags) as server:
        results["idle_rss_mb"] = round(server.rss_mb(), 1)
        post = b"POST /rerank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        query = post + b"Content-Length: %d\r\n\r\n" % (20 * MiB + 40) + b'{"query": "'
        results["query_20mib"] = refusal(server, query, b"x" * 65536, 320)
        results["body_100mb"] = refusal(server, post + b"Content-Length: 100000000\r\n\r\n", b"x" * 65536, 1600)
        chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
        results["body_100mb_chunked"] = refusal(server, post + b"Transfer-Encoding: chunked\r\n\r\n", chunk, 1600)
        results["abandoned_largest_job"] = abandoned_job(server, largest)

        requests = workload(args.documents)
        requests = [requests[i % len(requests)] for i in range(args.clients)]
        local = Reranker(args.model, precision="fp32", runtime="torch")
        expected = [local.score(query, documents) for query, documents in requests]
        server.reset_peak()
        alone = asyncio.run(clients(server.url, requests))
        alone_peak = server.peak_rss_mb()
        server.reset_peak()
        health: list[float] = []
        stop = threading.Event()

        def probe() -> None:  # the event loop must keep answering while bodies are parsed and scored
            while not stop.wait(0.1):
                started = time.perf_counter()
                httpx.get(f"{server.url}/health", timeout=60)
                health.append(time.perf_counter() - started)

        prober = threading.Thread(target=probe, daemon=True)
        with hostile_traffic(server.port, {"query": "q", "documents": largest}) as seen:
            prober.start()
            time.sleep(1.0)
            beside = asyncio.run(clients(server.url, requests))
            stop.set()
        prober.join()
        results["health_during_hostile_ms"] = {
            "p50": round(statistics.median(health) * 1000, 1),
            "max": round(max(health) * 1000, 1),
            "probes": len(health),
        }
        hostile_peak = server.peak_rss_mb()
        runs = (("clients_alone", alone, alone_peak), ("clients_beside_hostile", beside, hostile_peak))
        for name, run, peak in runs:
            pairs = zip(run.pop("scores"), expected, strict=True)
            worst = max(abs(a - b) for got, want in pairs for a, b in zip(got, want, strict=True))
            results[name] = {
                **{key: round(value, 2) if isinstance(value, float) else value for key, value in run.items()},
                "requests": len(requests),
                "peak_rss_mb": round(peak, 1),
                "max_score_difference": worst,
            }
        results["hostile_attempts"] = {name: len(outcomes) for name, outcomes in seen.items()}
        results["p95_ratio_beside_hostile"] = round(beside["p95_ms"] / alone["p95_ms"], 2)
    results["sigterm_abandoned_queue"] = shutdown(args.model, flags, largest, connected=False)
    results["sigterm_abandoned_queue_plus_connected_job"] = shutdown(args.model, flags, largest, connected=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")

    table = Table(title=f"rerank service under hostile traffic ({args.model}, default limits)")
    table.add_column("check")
    table.add_column("result")
    for name, value in results.items():
        table.add_row(name, json.dumps(value))
    Console().print(table)


if __name__ == "__main__":
    main()
