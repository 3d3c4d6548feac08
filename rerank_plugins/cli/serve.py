"""``rerank-plugins serve``: the rerank HTTP service, in this process or as Ray Serve replicas."""

from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any

from rerank_plugins._optional import require
from rerank_plugins.cli.options import add_reranker_options, reranker_from
from rerank_plugins.serving.app import create_app
from rerank_plugins.serving.limits import ServiceLimits
from rerank_plugins.serving.server import server_config

__all__ = ["add_parser", "run"]


def add_parser(commands: Any, name: str) -> None:
    parser = commands.add_parser(name, help="serve POST /rerank over HTTP (FastAPI), optionally on Ray Serve")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0: all)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model-name", default=None, help="name shown in answers (default: the model's own)")
    parser.add_argument("--log-level", default="warning", help="uvicorn's log level (info shows each request)")
    limits = parser.add_argument_group("limits and batching (see the README's limits table)")
    for limit in fields(ServiceLimits):
        if limit.name == "micro_batching":
            continue
        flag = "--" + limit.name.replace("_", "-")
        kind = float if isinstance(limit.default, float) else int
        text = str(limit.metadata["help"]).replace("``", "")
        limits.add_argument(flag, type=kind, default=limit.default, help=f"{text} (default: %(default)s)")
    limits.add_argument("--no-micro-batching", action="store_true", help="one request per forward pass")
    ray = parser.add_argument_group("Ray Serve (the ray extra)")
    ray.add_argument("--ray", action="store_true", help="serve with Ray Serve replicas behind Ray's router")
    ray.add_argument("--replicas", type=int, default=2)
    ray.add_argument("--cpus-per-replica", type=float, default=1.0)
    add_reranker_options(parser)


def limits_from(args: argparse.Namespace) -> ServiceLimits:
    values = {
        limit.name: getattr(args, limit.name) for limit in fields(ServiceLimits) if limit.name != "micro_batching"
    }
    return ServiceLimits(**values, micro_batching=not args.no_micro_batching)


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
    limits = limits_from(args)
    app = create_app(reranker, limits, model_name=args.model_name)
    uvicorn.Server(server_config(app, limits, host=args.host, port=args.port, log_level=args.log_level)).run()
    return 0
