"""``rerank-plugins serve``: the rerank HTTP service, in this process or as Ray Serve replicas."""

from __future__ import annotations

import argparse
from typing import Any

from rerank_plugins._optional import require
from rerank_plugins.cli.options import add_reranker_options, reranker_from
from rerank_plugins.serving.app import ServiceLimits, create_app

__all__ = ["add_parser", "run"]


def add_parser(commands: Any, name: str) -> None:
    parser = commands.add_parser(name, help="serve POST /rerank over HTTP (FastAPI), optionally on Ray Serve")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0: all)")
    parser.add_argument("--port", type=int, default=8000)
    limits = parser.add_argument_group("limits and batching")
    defaults = ServiceLimits()
    limits.add_argument("--max-documents", type=int, default=defaults.max_documents, help="per request (else 413)")
    limits.add_argument("--max-document-bytes", type=int, default=defaults.max_document_bytes, help="else 413")
    limits.add_argument("--max-wait-ms", type=float, default=defaults.max_wait_ms, help="micro-batching wait")
    limits.add_argument("--max-batch-pairs", type=int, default=defaults.max_batch_pairs, help="pairs per pass")
    limits.add_argument("--max-queue", type=int, default=defaults.max_queue, help="waiting requests (else 503)")
    limits.add_argument("--no-micro-batching", action="store_true", help="one request per forward pass")
    ray = parser.add_argument_group("Ray Serve (the ray extra)")
    ray.add_argument("--ray", action="store_true", help="serve with Ray Serve replicas behind Ray's router")
    ray.add_argument("--replicas", type=int, default=2)
    ray.add_argument("--cpus-per-replica", type=float, default=1.0)
    add_reranker_options(parser)


def limits_from(args: argparse.Namespace) -> ServiceLimits:
    return ServiceLimits(
        max_documents=args.max_documents,
        max_document_bytes=args.max_document_bytes,
        max_wait_ms=args.max_wait_ms,
        max_batch_pairs=args.max_batch_pairs,
        max_queue=args.max_queue,
        micro_batching=not args.no_micro_batching,
    )


def run(args: argparse.Namespace) -> int:
    reranker = reranker_from(args)  # loads now: a bad model fails before the port opens
    if args.ray:
        from rerank_plugins.serving.ray_serve import run_ray_service

        options = {name: value for name, value in reranker.options().items() if name != "show_progress_bar"}
        run_ray_service(
            options,
            limits_from(args),
            host=args.host,
            port=args.port,
            replicas=args.replicas,
            cpus_per_replica=args.cpus_per_replica,
        )
        return 0
    uvicorn = require("uvicorn", "serve")
    uvicorn.run(create_app(reranker, limits_from(args)), host=args.host, port=args.port, log_level="warning")
    return 0
