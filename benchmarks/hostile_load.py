"""The rerank service under hostile traffic, with its default limits: refusals, memory, latency, shutdown.

Starts a real ``rerank-plugins serve`` process (the SciFact model, torch fp32 by default) and measures:
time and peak-memory growth to refuse a 20 MiB query and 100 MB bodies; how fast the worker is freed
from the largest admissible job once its client leaves; 200 concurrent clients alone and beside five
hostile ones (p50/p95, peak RSS, every answer checked against the local core); SIGTERM with a queue of
abandoned jobs. Then each attack of issue 27 (``attacks.py``) alone and all at once, in processes of their
own: the service's peak RSS, ``/live`` p50 and p99, and a legitimate client's p50 (``RemoteReranker``, which
follows ``Retry-After``), next to the same figures with no attack. Run from the repository root:

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/hostile_load.py --model ../shared/models/minilm-l6-scifact-ce
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/hostile_load.py --part attacks   # the attack table only
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
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

from attacks import ATTACKS  # noqa: E402
from serve_load import workload  # noqa: E402

from rerank_plugins import Reranker  # noqa: E402
from rerank_plugins.remote import RemoteReranker  # noqa: E402
from tests.serving.servers import ServeProcess, hostile_traffic  # noqa: E402

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


def _quantiles(seconds: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    ordered = sorted(seconds)
    return statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


def under_attack(
    server: ServeProcess, names: list[str], requests: list[tuple[str, list[str]]], seconds: float
) -> dict[str, Any]:
    """Run the named attacks (none: the unloaded figures) while probing ``/live`` every 50 ms and a legitimate
    client reranks one request after another for ``seconds``."""
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    attackers = [context.Process(target=ATTACKS[name], args=(server.port, stop), daemon=True) for name in names]
    for attacker in attackers:
        attacker.start()
    time.sleep(2.0 if names else 0.0)  # the attacks take hold
    server.reset_peak()
    live: list[float] = []
    probing = threading.Event()

    def probe() -> None:
        with httpx.Client(timeout=60) as client:
            while not probing.wait(0.05):
                started = time.perf_counter()
                client.get(f"{server.url}/live")
                live.append(time.perf_counter() - started)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    remote = RemoteReranker(server.url, timeout=60, deadline=120)
    legit: list[float] = []
    failed = 0
    ends = time.perf_counter() + seconds
    turn = 0
    while time.perf_counter() < ends:
        query, documents = requests[turn % len(requests)]
        turn += 1
        started = time.perf_counter()
        try:
            remote.rank(query, documents)
            legit.append(time.perf_counter() - started)
        except Exception:  # noqa: BLE001 - a failed legitimate request is what this counts
            failed += 1
    probing.set()
    prober.join()
    peak = server.peak_rss_mb()
    stop.set()
    for attacker in attackers:
        attacker.join(10)
        if attacker.is_alive():
            attacker.terminate()
    live_p50, live_p99 = _quantiles(live)
    legit_p50, _ = _quantiles(legit) if legit else (float("nan"), 0.0)
    return {
        "peak_rss_mb": round(peak, 1),
        "live_p50_ms": round(live_p50, 1),
        "live_p99_ms": round(live_p99, 1),
        "legit_p50_ms": round(legit_p50, 1),
        "legit_answered": len(legit),
        "legit_failed": failed,
    }


def attack_table(model: str, seconds: float, pin: bool) -> dict[str, Any]:
    """Every attack alone, then all at once, against one service with default limits; ratios to no attack.

    With ``pin`` the service (one torch thread) runs on CPU 0 and everything else (attackers, the probe and
    the legitimate client) on CPU 1, as if they were other machines: the figures are then the service's own
    resilience, not two processes fighting over two cores.
    """
    requests = workload(10)
    table: dict[str, Any] = {}
    if pin:
        os.environ["OMP_NUM_THREADS"] = "1"
        os.sched_setaffinity(0, {0})  # the service inherits CPU 0
    with ServeProcess(model, "--log-level", "error") as server:
        if pin:
            os.sched_setaffinity(0, {1})  # this process and the attackers it starts: CPU 1
        RemoteReranker(server.url).rank(*requests[0])  # warm
        for name in ["none", *ATTACKS, "all"]:
            names = [] if name == "none" else list(ATTACKS) if name == "all" else [name]
            table[name] = under_attack(server, names, requests, seconds)
            base = table["none"]["legit_p50_ms"]
            table[name]["legit_p50_ratio"] = round(table[name]["legit_p50_ms"] / base, 2)
            Console().print(name, table[name])
            time.sleep(1.0)
    return table


def print_attack_table(table: dict[str, Any], model: str) -> None:
    view = Table(title=f"rerank service under each attack of issue 27 ({model}, default limits)")
    for column in ("attack", "peak RSS MB", "/live p50 ms", "/live p99 ms", "legit p50 ms", "ratio", "legit ok/failed"):
        view.add_column(column)
    for name, row in table.items():
        view.add_row(
            name, str(row["peak_rss_mb"]), str(row["live_p50_ms"]), str(row["live_p99_ms"]),
            str(row["legit_p50_ms"]), str(row["legit_p50_ratio"]), f"{row['legit_answered']}/{row['legit_failed']}",
        )  # fmt: skip
    Console().print(view)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="../shared/models/minilm-l6-scifact-ce")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--documents", type=int, default=10, help="passages per well-behaved request")
    parser.add_argument("--out", default="benchmarks/results/hostile_load.json")
    parser.add_argument("--part", choices=("all", "classic", "attacks"), default="all")
    parser.add_argument("--seconds", type=float, default=15.0, help="how long each attack row is measured")
    parser.add_argument("--attacks-out", default="benchmarks/results/hostile_attacks.json")
    parser.add_argument(
        "--no-pin", dest="pin", action="store_false", help="let the service and the attackers share every CPU"
    )
    args = parser.parse_args()
    if args.part in ("all", "attacks"):
        pin = args.pin and len(os.sched_getaffinity(0)) >= 2
        table = attack_table(args.model, args.seconds, pin)
        table["none"]["pinned"] = pin
        Path(args.attacks_out).write_text(json.dumps(table, indent=2) + "\n")
        print_attack_table(table, args.model)
    if args.part == "attacks":
        return
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
