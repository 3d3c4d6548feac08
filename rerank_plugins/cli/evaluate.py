"""``rerank-plugins eval``: retrieval alone vs reranked vs fused on BEIR-format data; JSON report and PNG chart."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from rerank_plugins.cli.commands import COMMANDS
from rerank_plugins.cli.options import add_reranker_options, check_ready, reranker_from, saved_index
from rerank_plugins.evaluation import load_beir
from rerank_plugins.evaluation.chart import write_chart
from rerank_plugins.evaluation.pipeline import dev_split, evaluate, tune_fusion_weight
from rerank_plugins.retrieval import FaissRetriever

__all__ = ["add_parser", "build_retriever", "run"]


def add_parser(commands: Any, name: str) -> None:
    parser = commands.add_parser(name, help=COMMANDS[name].help)
    parser.add_argument("--data", required=True, help="BEIR directory: corpus.jsonl, queries.jsonl, qrels/")
    parser.add_argument("--split", default="test", help="qrels split to evaluate (default: test)")
    parser.add_argument("--top-k", type=int, default=50, help="bi-encoder candidates reranked per query")
    parser.add_argument(
        "--max-queries", type=int, default=None, help="evaluate the first N queries of the split (in file order)"
    )
    parser.add_argument("--bi-encoder", default=None, help="bi-encoder (default: bundled all-MiniLM-L6-v2)")
    parser.add_argument("--index-dir", default=None, help="save the FAISS index here, or load it if present")
    fusion = parser.add_mutually_exclusive_group()
    fusion.add_argument("--fusion-weight", type=float, default=None, help="also report this blend (0-1)")
    fusion.add_argument(
        "--tune-fusion",
        action="store_true",
        help="pick the fusion weight on a seeded hold-out of the train split's queries (--dev-split)",
    )
    parser.add_argument("--dev-split", default="train", help="qrels split the dev queries come from")
    parser.add_argument("--dev-queries", type=int, default=80, help="dev queries held out for --tune-fusion")
    parser.add_argument("--output", default="eval-report", help="directory for report.json and chart.png")
    add_reranker_options(parser)


def build_retriever(
    args: argparse.Namespace, corpus: dict[str, str], console: Console, precision: str = "auto"
) -> FaissRetriever:
    """The FAISS retriever over ``corpus``: loaded from ``--index-dir`` when saved there, else built (and saved);
    its bi-encoder runs in ``precision``."""
    saved = saved_index(args)
    if saved is not None:
        return FaissRetriever.load(saved, model=args.bi_encoder, precision=precision)
    console.print(f"Embedding {len(corpus)} documents with the bi-encoder")
    retriever = FaissRetriever.from_texts(
        list(corpus.values()), ids=list(corpus), model=args.bi_encoder, show_progress_bar=True, precision=precision
    )  # a bar with counts and ETA: the whole corpus takes minutes on a CPU
    if args.index_dir is not None:
        retriever.save(args.index_dir)
    return retriever


def _table(report: Any) -> Table:
    table = Table(title=f"{report.queries} queries, top-{report.top_k} candidates")
    table.add_column("stage")
    names = list(next(iter(report.metrics.values())))
    for name in names:
        table.add_column(name, justify="right")
    for stage, values in report.metrics.items():
        label = f"{stage} (w={report.fusion_weight})" if stage == "fused" else stage
        table.add_row(label, *(f"{values[name]:.4f}" for name in names))
    return table


def run(args: argparse.Namespace) -> int:
    console = Console()
    check_ready(args, ("faiss", "eval"), bi_encoder=True)
    reranker = reranker_from(args)
    data = load_beir(args.data, args.split)
    if args.max_queries is not None:
        kept = list(data.queries)[: args.max_queries]
        data = type(data)(data.corpus, {q: data.queries[q] for q in kept}, {q: data.qrels[q] for q in kept})
    started = time.perf_counter()
    retriever = build_retriever(args, data.corpus, console)
    index_seconds = time.perf_counter() - started
    weight, dev_ndcg = args.fusion_weight, None
    if args.tune_fusion:
        dev = dev_split(load_beir(args.data, args.dev_split), size=args.dev_queries)
        weight, dev_ndcg = tune_fusion_weight(dev, retriever, reranker, args.top_k)
        console.print(f"fusion weight {weight} chosen on {len(dev.queries)} {args.dev_split} queries")
    report = evaluate(data, retriever, reranker, top_k=args.top_k, fusion_weight=weight)
    report.timing["index_seconds"] = index_seconds
    report.settings = {
        "data": str(args.data),
        "split": args.split,
        "model": reranker.model_name,
        "precision": reranker.precision,
        "runtime": reranker.runtime,
        "device": reranker.device,
        "bi_encoder": retriever.model_name,
        "dev_ndcg@10_by_weight": dev_ndcg,
    }
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "report.json").write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    write_chart(report, output / "chart.png", title=f"{Path(args.data).name} {args.split}: {_table(report).title}")
    console.print(_table(report))
    console.print(
        f"rerank: {report.work['pairs_scored']:.0f} pairs, {report.work['tokens_scored']:.0f} tokens in "
        f"{report.timing['rerank_seconds']:.1f} s ({report.timing['rerank_pairs_per_second']:.1f} pairs/s); "
        f"report and chart in {output}/"
    )
    return 0
