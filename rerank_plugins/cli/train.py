"""``rerank-plugins train``: fine-tune a cross-encoder on BEIR-format judgments with mined hard negatives."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from rerank_plugins.cli.commands import COMMANDS
from rerank_plugins.cli.evaluate import build_retriever
from rerank_plugins.cli.options import check_ready
from rerank_plugins.evaluation.beir import check_beir_directory, load_corpus
from rerank_plugins.retrieval import default_bi_encoder
from rerank_plugins.training import TrainingConfig, TrainingReport, fine_tune
from rerank_plugins.training.card import worse_warning

__all__ = ["add_parser", "run"]


def add_parser(commands: Any, name: str) -> None:
    parser = commands.add_parser(name, help=COMMANDS[name].help)
    parser.add_argument("--data", required=True, help="BEIR directory: corpus.jsonl, queries.jsonl, qrels/")
    parser.add_argument(
        "--base",
        default=None,
        help="cross-encoder, or plain encoder / bi-encoder to add a head to (default: all-MiniLM-L6-v2)",
    )
    parser.add_argument("--out", required=True, help="directory for the fine-tuned model")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it is not empty")
    recipe = parser.add_argument_group("recipe (defaults: the recipe of ../shared/models/minilm-l6-scifact-ce)")
    defaults = TrainingConfig()
    recipe.add_argument("--epochs", type=int, default=defaults.epochs, help="passes over the training groups")
    recipe.add_argument(
        "--hard-negatives",
        type=int,
        default=defaults.hard_negatives,
        help="negatives per group from the bi-encoder top 30",
    )
    recipe.add_argument(
        "--random-negatives", type=int, default=defaults.random_negatives, help="random negatives per group"
    )
    recipe.add_argument(
        "--learning-rate",
        type=float,
        default=defaults.learning_rate,
        help="AdamW learning rate of the encoder (the head has its own, 3e-4)",
    )
    recipe.add_argument("--max-length", type=int, default=defaults.max_length, help="tokens per pair")
    recipe.add_argument(
        "--precision",
        default=defaults.precision,
        choices=["auto", "fp32", "bf16"],
        help="autocast precision (auto: bf16 on CPUs with native bf16)",
    )
    recipe.add_argument("--seed", type=int, default=defaults.seed, help="seed for sampling and initialisation")
    recipe.add_argument("--train-split", default=defaults.train_split, help="qrels split to train on")
    recipe.add_argument("--dev-split", default=None, help="qrels split for dev (default: hold out --dev-queries)")
    recipe.add_argument(
        "--dev-queries",
        type=int,
        default=defaults.dev_queries,
        help="training queries held out as dev when no --dev-split",
    )
    recipe.add_argument("--max-train-queries", type=int, default=None, help="train on the first N queries only")
    parser.add_argument("--bi-encoder", default=None, help="bi-encoder for hard negatives (default: all-MiniLM-L6-v2)")
    parser.add_argument("--index-dir", default=None, help="save the FAISS index here, or load it if present")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    parser.add_argument(
        "--keep-worse",
        action="store_true",
        help="exit 0 even when the model reranks the dev queries worse than the bi-encoder alone (else exit 1)",
    )


def _table(report: TrainingReport) -> Table:
    table = Table(title=f"dev NDCG@10 (bi-encoder alone: {report.dev_retrieval_ndcg_at_10 or float('nan'):.4f})")
    for column in ("epoch", "mean loss", "dev NDCG@10", "seconds"):
        table.add_column(column, justify="right")
    for epoch in report.epochs:
        ndcg = "n/a" if epoch.dev_ndcg_at_10 is None else f"{epoch.dev_ndcg_at_10:.4f}"
        mark = " (kept)" if epoch.epoch == report.best_epoch else ""
        table.add_row(f"{epoch.epoch}{mark}", f"{epoch.mean_loss:.4f}", ndcg, f"{epoch.seconds:.0f}")
    return table


def run(args: argparse.Namespace) -> int:
    console = Console()
    check_ready(args, ("faiss", "eval"), bi_encoder=True)
    config = TrainingConfig(
        epochs=args.epochs,
        hard_negatives=args.hard_negatives,
        random_negatives=args.random_negatives,
        learning_rate=args.learning_rate,
        max_length=args.max_length,
        precision=args.precision,
        seed=args.seed,
        train_split=args.train_split,
        dev_split=args.dev_split,
        dev_queries=args.dev_queries,
        max_train_queries=args.max_train_queries,
    )
    corpus = load_corpus(check_beir_directory(args.data, args.train_split) / "corpus.jsonl")
    # fp32 on any hardware: the same data and --seed mine the same hard negatives on every machine
    retriever = build_retriever(args, corpus, console, precision="fp32") if corpus else None
    report = fine_tune(
        args.data,
        args.base or default_bi_encoder(),
        args.out,
        config,
        retriever=retriever,
        bi_encoder=args.bi_encoder,
        device=args.device,
        overwrite=args.overwrite,
    )
    console.print(_table(report))
    console.print(
        f"{report.positive_pairs} positives x {config.group_size} pairs x {config.epochs} epochs in "
        f"{report.train_seconds:.0f} s ({report.pairs_per_second:.1f} pairs/s); epoch {report.best_epoch} "
        f"saved to {report.output_dir}/"
    )
    if report.worse_than_retrieval:
        console.print(f"[bold red]{worse_warning(report).replace('**', '')}[/bold red]")
        if not args.keep_worse:
            print(
                f"rerank-plugins train: the model in {report.output_dir} is worse than the bi-encoder alone "
                "(kept for inspection; --keep-worse to accept it)",
                file=sys.stderr,
            )
            return 1
    return 0
