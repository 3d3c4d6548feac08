"""``rerank-plugins demo``: index the bundled corpus, retrieve, rerank, show both orders side by side."""

from __future__ import annotations

import argparse
import json
from importlib import resources
from typing import Any

from rich.console import Console
from rich.table import Table

from rerank_plugins.cli.options import add_reranker_options, check_ready, reranker_from
from rerank_plugins.reranker import DEFAULT_MODEL
from rerank_plugins.retrieval import FaissRetriever

__all__ = ["add_parser", "demo_corpus", "demo_queries", "run"]


def add_parser(commands: Any, name: str) -> None:
    parser = commands.add_parser(name, help="retrieve and rerank sample claims over a bundled corpus")
    parser.add_argument("--query", action="append", help="a query to run (repeatable; default: bundled claims)")
    parser.add_argument("-k", "--candidates", type=int, default=10, help="candidates fetched by the bi-encoder")
    parser.add_argument("--top-n", type=int, default=3, help="rows shown per query")
    parser.add_argument("--bi-encoder", default=None, help="bi-encoder (default: bundled all-MiniLM-L6-v2)")
    add_reranker_options(parser)


def demo_corpus() -> list[dict[str, str]]:
    """The 200 bundled passages (id, topic, text)."""
    text = resources.files("rerank_plugins.data").joinpath("demo_corpus.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def demo_queries() -> list[str]:
    """The bundled claims the demo runs by default."""
    text = resources.files("rerank_plugins.data").joinpath("demo_queries.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def _short(text: str, width: int = 72) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def run(args: argparse.Namespace) -> int:
    console = Console()
    check_ready(args, ("faiss",), bi_encoder=True)
    try:
        reranker = reranker_from(args)
    except OSError as error:
        if args.model != DEFAULT_MODEL:
            raise
        raise OSError(
            f"{error}\nThe demo's default cross-encoder could not be loaded. Point --model at a local "
            "cross-encoder directory, e.g. --model ../shared/models/minilm-l6-scifact-ce"
        ) from error
    rows = demo_corpus()
    with console.status(f"Indexing {len(rows)} passages with the bi-encoder…"):
        retriever = FaissRetriever.from_texts(
            [row["text"] for row in rows],
            ids=[row["id"] for row in rows],
            metadatas=[{"topic": row["topic"]} for row in rows],
            model=args.bi_encoder,
        )
    console.print(f"bi-encoder: {retriever.model_name}\ncross-encoder: {reranker!r}\n")
    queries = args.query or demo_queries()
    hits_per_query = retriever.search_many(queries, k=args.candidates)
    rankings = reranker.rank_many(queries, [[hit.text for hit in hits] for hits in hits_per_query])
    for query, hits, ranking in zip(queries, hits_per_query, rankings, strict=True):
        table = Table(title=query, title_justify="left", show_lines=False, expand=True)
        table.add_column("#", justify="right", width=2)
        table.add_column("bi-encoder order (cosine)", ratio=1)
        table.add_column("reranked (relevance, was #)", ratio=1)
        for position in range(min(args.top_n, len(hits))):
            hit, result = hits[position], ranking[position]
            moved = hits[result.index]
            table.add_row(
                str(position + 1),
                f"[dim]{hit.score:.3f}[/dim] {_short(hit.text)}",
                f"[bold]{result.relevance_score:.3f}[/bold] [dim](#{result.index + 1})[/dim] {_short(moved.text)}",
            )
        console.print(table)
    stats = reranker.stats
    console.print(
        f"\nReranked {stats.pairs} pairs ({stats.tokens} tokens, {stats.padding_waste:.0%} padding) "
        f"in {stats.seconds:.2f} s on {reranker.device} ({reranker.runtime} {reranker.precision})."
    )
    return 0
