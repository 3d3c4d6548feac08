"""Command-line options shared by the commands, and building the core from them."""

from __future__ import annotations

import argparse

from rerank_plugins.devices import PRECISIONS
from rerank_plugins.reranker import DEFAULT_MODEL, Reranker
from rerank_plugins.runtime import RUNTIMES

__all__ = ["add_reranker_options", "reranker_from"]


def add_reranker_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("reranker")
    group.add_argument("--model", default=DEFAULT_MODEL, help="cross-encoder: Hugging Face id or local directory")
    group.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    group.add_argument("--precision", default="auto", choices=PRECISIONS)
    group.add_argument("--runtime", default="auto", choices=RUNTIMES)
    group.add_argument("--batch-size", type=int, default=32)
    group.add_argument("--max-length", type=int, default=None, help="tokens per pair (default: the model's own)")
    group.add_argument("--long-documents", default="truncate", choices=["truncate", "window"])
    group.add_argument(
        "--instruction",
        default=None,
        help="task instruction in the prompt of a causal-LM reranker such as Qwen3-Reranker (default: the model's)",
    )


def reranker_from(args: argparse.Namespace) -> Reranker:
    """The core the options describe, loaded now so that a bad model fails before any other work."""
    reranker = Reranker(
        args.model,
        device=args.device,
        precision=args.precision,
        runtime=args.runtime,
        batch_size=args.batch_size,
        max_length=args.max_length,
        long_documents=args.long_documents,
        instruction=args.instruction,
    )
    return reranker.load()
