"""Load test of the rerank service on loopback: micro-batching on vs off, in one process.

500 requests from 32 concurrent clients (by default), each a science claim with 20 passages of the bundled
demo corpus. Every answer's scores are checked against the local core's (1e-4 in fp32, 0.05 in bf16/fp16). Run:

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/serve_load.py --model ../shared/models/minilm-l6-scifact-ce
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from rerank_plugins import Reranker
from rerank_plugins.cli.demo import demo_corpus, demo_queries
from rerank_plugins.serving import ServiceLimits, create_app, serve_in_background


def workload(documents_per_request: int) -> list[tuple[str, list[str]]]:
    """One (claim, passages) request per claim and topic pair: half the passages on-topic, half off."""
    corpus = demo_corpus()
    topics = sorted({row["topic"] for row in corpus})
    by_topic = {topic: [row["text"] for row in corpus if row["topic"] == topic] for topic in topics}
    half = documents_per_request // 2
    requests = []
    for q, query in enumerate(demo_queries()):
        for t, topic in enumerate(topics):
            other = topics[(t + 1 + q) % len(topics)]
            requests.append((query, by_topic[topic][:half] + by_topic[other][: documents_per_request - half]))
    return requests


async def _load(url: str, requests: list[tuple[str, list[str]]], count: int, clients: int) -> dict[str, Any]:
    latencies: list[float] = []
    answers: list[tuple[int, dict[int, float]]] = []
    semaphore = asyncio.Semaphore(clients)
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=clients)) as client:

        async def one(i: int) -> None:
            query, documents = requests[i % len(requests)]
            async with semaphore:
                started = time.perf_counter()
                answer = await client.post(f"{url}/rerank", json={"query": query, "documents": documents})
                latencies.append(time.perf_counter() - started)
            answer.raise_for_status()
            answers.append((i % len(requests), {row["index"]: row["score"] for row in answer.json()["results"]}))

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "latencies": latencies, "answers": answers}


def run_mode(reranker: Reranker, batching: bool, requests: list[tuple[str, list[str]]], args: Any) -> dict[str, Any]:
    expected = [{r.index: r.score for r in ranking} for ranking in reranker.rank_many(*zip(*requests, strict=True))]
    limits = ServiceLimits(micro_batching=batching, max_wait_ms=args.max_wait_ms, max_queue=max(256, args.clients))
    with serve_in_background(create_app(reranker, limits)) as url:
        asyncio.run(_load(url, requests, args.clients, args.clients))  # warm-up
        result = asyncio.run(_load(url, requests, args.requests, args.clients))
        batches = httpx.get(f"{url}/info").json()["batches_run"]
    differences = [
        max(abs(scores[index] - expected[position][index]) for index in expected[position])
        for position, scores in result["answers"]
    ]
    tolerance = 1e-4 if reranker.precision == "fp32" else 0.05  # batch make-up moves low-precision scores a little
    wrong = sum(difference > tolerance for difference in differences)
    pairs = sum(len(requests[i % len(requests)][1]) for i in range(args.requests))
    latencies = sorted(result["latencies"])
    return {
        "micro_batching": batching,
        "requests": args.requests,
        "answered": len(result["answers"]),
        "wrong": wrong,
        "max_score_difference": max(differences),
        "seconds": result["seconds"],
        "requests_per_second": args.requests / result["seconds"],
        "pairs_per_second": pairs / result["seconds"],
        "p50_ms": 1000 * statistics.median(latencies),
        "p95_ms": 1000 * latencies[int(0.95 * (len(latencies) - 1))],
        "forward_batches": batches,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="../shared/models/minilm-l6-scifact-ce")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--documents", type=int, default=20, help="passages per request")
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--output", default="benchmarks/results/serve_load.json")
    args = parser.parse_args()
    reranker = Reranker(args.model, precision=args.precision).load()
    requests = workload(args.documents)
    modes = [run_mode(reranker, batching, requests, args) for batching in (False, True)]
    ratio = modes[1]["requests_per_second"] / modes[0]["requests_per_second"]
    table = Table(title=f"{args.requests} requests x {args.documents} passages, {args.clients} concurrent clients")
    columns = ("batching", "answered", "wrong", "max diff", "req/s", "pairs/s", "p50 ms", "p95 ms", "passes")
    for column in columns:
        table.add_column(column, justify="right")
    for mode in modes:
        table.add_row(
            "on" if mode["micro_batching"] else "off",
            str(mode["answered"]),
            str(mode["wrong"]),
            f"{mode['max_score_difference']:.4f}",
            f"{mode['requests_per_second']:.1f}",
            f"{mode['pairs_per_second']:.0f}",
            f"{mode['p50_ms']:.0f}",
            f"{mode['p95_ms']:.0f}",
            str(mode["forward_batches"]),
        )
    console = Console()
    console.print(table)
    console.print(f"micro-batching throughput ratio (on / off, same run): {ratio:.2f}x")
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    report = {"model": args.model, "precision": reranker.precision, "modes": modes, "ratio": ratio, **vars(args)}
    output.write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
