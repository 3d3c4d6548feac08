"""Command-line options shared by the commands, and building the core from them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rerank_plugins._optional import require
from rerank_plugins.devices import PRECISIONS
from rerank_plugins.loading import check_model_reference
from rerank_plugins.reranker import DEFAULT_MODEL, Reranker
from rerank_plugins.runtime import RUNTIMES

__all__ = ["HelpFormatter", "add_reranker_options", "check_ready", "reranker_from", "saved_index"]

EXTRAS = {"faiss": "faiss", "eval": "ir_measures", "serve": "fastapi"}
"""An extra a command needs, and a module it brings that tells whether it is installed."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where there is none to show (``None``, a flag's ``False``)
    or the help already names it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "(default" in text or not action.option_strings:
            return text
        return super()._get_help_string(action)


def add_reranker_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("reranker")
    group.add_argument("--model", default=DEFAULT_MODEL, help="cross-encoder: Hugging Face id or local directory")
    group.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    group.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="auto: bf16 on CPUs with native bf16, fp16 on CUDA, else fp32; int8 needs the openvino extra",
    )
    group.add_argument(
        "--runtime",
        default="auto",
        choices=RUNTIMES,
        help="auto: OpenVINO on CPU when the openvino extra is installed (exported once, then cached), else torch",
    )
    group.add_argument(
        "--batch-size", type=int, default=None, help="most pairs per forward pass (default: 512 on CUDA, 32 elsewhere)"
    )
    group.add_argument(
        "--batch-tokens",
        type=int,
        default=None,
        help="most tokens per forward pass, padding included: the core's max_batch_tokens "
        "(default: 65,536 on CUDA, 16,384 elsewhere)",
    )
    group.add_argument("--max-length", type=int, default=None, help="tokens per pair (default: the model's own)")
    group.add_argument(
        "--long-documents",
        default="truncate",
        choices=["truncate", "window"],
        help="truncate: cut what does not fit (counted as truncated_tokens); window: score overlapping windows",
    )
    group.add_argument(
        "--window-boundaries",
        default="tokens",
        choices=["tokens", "sentence"],
        help="with --long-documents window: sentence starts and ends windows on sentence boundaries",
    )
    group.add_argument(
        "--instruction",
        default=None,
        help="task instruction in the prompt of a causal-LM reranker such as Qwen3-Reranker (default: the model's)",
    )
    group.add_argument(
        "--calibration",
        default="auto",
        help="calibration file from 'rerank-plugins calibrate' (relevance_score becomes P(relevant)); "
        "auto: the model directory's rerank-calibration.json if any; none: uncalibrated",
    )


def saved_index(args: argparse.Namespace) -> Path | None:
    """``--index-dir`` when a FAISS index is saved there (the command loads it instead of embedding)."""
    index_dir = getattr(args, "index_dir", None)
    return Path(index_dir) if index_dir is not None and (Path(index_dir) / "config.json").is_file() else None


def check_ready(args: argparse.Namespace, extras: tuple[str, ...] = (), bi_encoder: bool = False) -> None:
    """What a command needs, checked before any work: its extras are installed and, where it embeds, its
    bi-encoder (``--bi-encoder``, else a saved index's, else the default) can be found (a local directory, or a
    hub id in the cache when offline). Each problem is
    one line naming the fix, instead of a failure after minutes of loading or embedding."""
    for extra in extras:
        require(EXTRAS[extra], extra)
    if bi_encoder:
        from rerank_plugins.retrieval.embedder import default_bi_encoder, refuse_cross_encoder

        saved = saved_index(args)
        built_with = json.loads((saved / "config.json").read_text(encoding="utf-8"))["model"] if saved else None
        name = args.bi_encoder or built_with or default_bi_encoder()  # the one that will embed the queries
        try:
            check_model_reference(name)
        except (OSError, TypeError) as error:
            raise FileNotFoundError(
                f"no bi-encoder to retrieve with: {error} Pass --bi-encoder PATH (a sentence-transformers "
                "bi-encoder such as all-MiniLM-L6-v2)"
            ) from None
        refuse_cross_encoder(name)


def reranker_from(args: argparse.Namespace) -> Reranker:
    """The core the options describe, loaded now so that a bad model fails before any other work."""
    reranker = Reranker(
        args.model,
        device=args.device,
        precision=args.precision,
        runtime=args.runtime,
        batch_size=args.batch_size,
        max_batch_tokens=args.batch_tokens,
        max_length=args.max_length,
        long_documents=args.long_documents,
        window_boundaries=args.window_boundaries,
        instruction=args.instruction,
        calibration=None if args.calibration.lower() == "none" else args.calibration,
    )
    return reranker.load()
