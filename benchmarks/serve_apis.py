"""The rerank service through each API shape it speaks, and through the official Cohere SDK, in one process.

The workload of ``serve_load.py`` (science claims with 20 bundled passages each), micro-batching on, 32
concurrent clients, one service. Each shape's answers are checked against the local core's (1e-4 in
fp32), and its throughput is reported as a ratio to our own shape in the same run. Run:

    HF_HUB_OFFLINE=1 PYTHONPATH=. .venv/bin/python benchmarks/serve_apis.py --precision fp32
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

from benchmarks.serve_load import workload
from rerank_plugins import Reranker
from rerank_plugins.serving import ServiceLimits, create_app, serve_in_background
from tests.serving.shapes import SHAPES, request_in, scores_in

SDK = "cohere-sdk"


async def _load(
    url: str, shape: str, requests: list[tuple[str, list[str]]], count: int, clients: int
) -> dict[str, Any]:
    latencies: list[float] = []
    answers: list[tuple[int, str, list[float]]] = []
    semaphore = asyncio.Semaphore(clients)
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=clients)) as client:
        sdk = None
        if shape == SDK:
            import cohere

            sdk = cohere.AsyncClientV2(api_key="unused", base_url=url, httpx_client=client)

        async def one(i: int) -> None:
            query, documents = requests[i % len(requests)]
            async with semaphore:
                started = time.perf_counter()
                if sdk is not None:
                    reply = await sdk.rerank(model="served", query=query, documents=documents, top_n=len(documents))
                    by_index = {row.index: row.relevance_score for row in reply.results}
                    kind, scores = "relevance_score", [by_index[position] for position in range(len(documents))]
                else:
                    path, body = request_in(shape, query, documents)
                    answer = await client.post(f"{url}{path}", json=body)
                    answer.raise_for_status()
                    kind, scores = scores_in(shape, answer.json(), len(documents))
                latencies.append(time.perf_counter() - started)
            answers.append((i % len(requests), kind, scores))

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "latencies": latencies, "answers": answers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="../shared/models/minilm-l6-scifact-ce")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--documents", type=int, default=20, help="passages per request")
    parser.add_argument("--output", default="benchmarks/results/serve_apis.json")
    args = parser.parse_args()
    reranker = Reranker(args.model, precision=args.precision).load()
    requests = workload(args.documents)
    ranked = [sorted(r, key=lambda row: row.index) for r in reranker.rank_many(*zip(*requests, strict=True))]
    tolerance = 1e-4 if reranker.precision == "fp32" else 0.05
    rows = []
    with serve_in_background(create_app(reranker, ServiceLimits(max_queue=256), model_name="served")) as url:
        asyncio.run(_load(url, "rerank-plugins", requests, args.requests, args.clients))  # warm-up, as long as a run
        for shape in (*SHAPES, SDK):
            result = asyncio.run(_load(url, shape, requests, args.requests, args.clients))
            difference = max(
                abs(got - getattr(want, kind))
                for position, kind, scores in result["answers"]
                for got, want in zip(scores, ranked[position], strict=True)
            )
            latencies = sorted(result["latencies"])
            rows.append(
                {
                    "api": shape,
                    "answered": len(result["answers"]),
                    "wrong": int(difference > tolerance),
                    "max_score_difference": difference,
                    "requests_per_second": args.requests / result["seconds"],
                    "p50_ms": 1000 * statistics.median(latencies),
                    "p95_ms": 1000 * latencies[int(0.95 * (len(latencies) - 1))],
                }
            )
    base = rows[0]["requests_per_second"]
    table = Table(title=f"{args.requests} requests x {args.documents} passages, {args.clients} clients, one service")
    for column in ("api", "answered", "max diff", "req/s", "x ours", "p50 ms", "p95 ms"):
        table.add_column(column, justify="right")
    for row in rows:
        row["ratio"] = row["requests_per_second"] / base
        table.add_row(
            row["api"],
            str(row["answered"]),
            f"{row['max_score_difference']:.1e}",
            f"{row['requests_per_second']:.1f}",
            f"{row['ratio']:.2f}",
            f"{row['p50_ms']:.0f}",
            f"{row['p95_ms']:.0f}",
        )
    Console().print(table)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    report = {"model": args.model, "precision": reranker.precision, "apis": rows, **vars(args)}
    output.write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
