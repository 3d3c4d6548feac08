"""Command-line options shared by the commands, and building the core from them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rerank_plugins._optional import require
from rerank_plugins.cli.formatting import HelpFormatter
from rerank_plugins.loading import check_model_reference
from rerank_plugins.options import CORE_OPTIONS, CoreOption
from rerank_plugins.reranker import Reranker

__all__ = ["HelpFormatter", "add_reranker_options", "check_ready", "core_options", "reranker_from", "saved_index"]

EXTRAS = {"faiss": "faiss", "eval": "ir_measures", "serve": "fastapi"}
"""An extra a command needs, and a module it brings that tells whether it is installed."""


def add_reranker_options(parser: argparse.ArgumentParser) -> None:
    """One flag per core option that has one in the table (``rerank_plugins.options``), with its help and default."""
    group = parser.add_argument_group("reranker (the core's options; see the README's options table)")
    for option in CORE_OPTIONS:
        if option.flag is None:
            continue
        text = option.help.replace("`", "").replace("%", "%%") + f" (default: {option.shown_default.replace('`', '')})"
        if option.kind is bool:
            group.add_argument(option.flag, action=argparse.BooleanOptionalAction, default=option.default, help=text)
        else:
            kind = int if option.kind is int else str
            group.add_argument(option.flag, type=kind, default=option.default, choices=option.choices, help=text)


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
    return Reranker(**core_options(args)).load()


def core_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``Reranker`` keyword arguments the command line gives: one per flag of the table."""
    return {option.name: _value(option, getattr(args, _dest(option))) for option in CORE_OPTIONS if option.flag}


def _dest(option: CoreOption) -> str:
    """Where argparse keeps a flag's value: named after the flag (``--batch-tokens``: ``batch_tokens``)."""
    return str(option.flag).lstrip("-").replace("-", "_")


def _value(option: CoreOption, value: Any) -> Any:
    """A flag's value as the core takes it: ``none`` is ``None`` for an option whose default is another string."""
    if option.nullable and option.default is not None and isinstance(value, str) and value.lower() == "none":
        return None
    return value
