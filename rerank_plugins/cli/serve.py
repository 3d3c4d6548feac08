"""``rerank-plugins serve``: the rerank HTTP service, in this process or as Ray Serve replicas."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
from dataclasses import fields
from typing import Any

from rerank_plugins.cli.commands import COMMANDS
from rerank_plugins.cli.options import add_reranker_options, check_ready, reranker_from
from rerank_plugins.serving.app import create_app
from rerank_plugins.serving.auth import API_KEY_ENV
from rerank_plugins.serving.limits import ServiceLimits
from rerank_plugins.serving.server import make_server, server_config

logger = logging.getLogger(__name__)

__all__ = ["add_parser", "run"]


def add_parser(commands: Any, name: str) -> None:
    parser = commands.add_parser(
        name, help=COMMANDS[name].help
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to listen on (0.0.0.0: all) (default: %(default)s)"
    )
    parser.add_argument("--port", type=port_number, default=8000, help="port to listen on (0: any free port)")
    parser.add_argument(
        "--served-model-name",
        "--model-name",
        action="append",
        default=None,
        metavar="NAME",
        help="a name requests may give as 'model'; repeat for aliases, the first is shown in answers "
        "(default: the model's hub id, or its directory's name)",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_ENV),
        metavar="KEY",
        help=f"require 'Authorization: Bearer KEY' on every route but /live and /health (default: ${API_KEY_ENV})",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="info logs the ready line and one access line per request (default: %(default)s)",
    )
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
    ray.add_argument("--replicas", type=int, default=2, help="Ray Serve replicas, each with its own model")
    ray.add_argument("--cpus-per-replica", type=float, default=1.0, help="CPUs Ray reserves for each replica")
    add_reranker_options(parser)


def port_number(text: str) -> int:
    """A TCP port, 0-65535 (argparse type): a larger number would wrap around to another port."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port: give 0-65535")
    return port


def limits_from(args: argparse.Namespace) -> ServiceLimits:
    values = {
        limit.name: getattr(args, limit.name) for limit in fields(ServiceLimits) if limit.name != "micro_batching"
    }
    return ServiceLimits(**values, micro_batching=not args.no_micro_batching)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    logging.getLogger("rerank_plugins").setLevel(args.log_level.upper())
    if not args.api_key and not _loopback(args.host):
        logger.warning(
            "serving on %s without an API key: anyone who can reach this port can use the model; "
            "pass --api-key or set %s",
            args.host,
            API_KEY_ENV,
        )
    check_ready(args, ("serve",))
    reranker = reranker_from(args)  # loads now: a bad model fails before the port opens
    names = args.served_model_name or []
    app_options: dict[str, Any] = {
        "model_name": names[0] if names else None,
        "aliases": names[1:],
        "api_key": args.api_key,
    }
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
            app_options=app_options,
        )
        return 0
    limits = limits_from(args)
    app = create_app(reranker, limits, **app_options)
    config = server_config(app, limits, host=args.host, port=args.port, log_level=args.log_level, own_logging=True)
    make_server(config).run()
    return 0
