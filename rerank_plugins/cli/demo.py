"""``rerank-plugins demo``: retrieve, rerank, show both orders side by side; on judged data, measure the change;
for long documents, show the passage each result was ranked for.

With ``--data`` (a BEIR directory such as SciFact) it runs judged claims over their abstracts and prints
the NDCG@10 and MRR@10 of the bi-encoder's order and of the reranked one; without it, the bundled corpus.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from rich.console import Console
from rich.table import Table

from rerank_plugins.cli.commands import COMMANDS
from rerank_plugins.cli.evaluate import build_retriever
from rerank_plugins.cli.highlight import highlighted
from rerank_plugins.cli.options import add_reranker_options, check_ready, reranker_from
from rerank_plugins.evaluation.beir import load_beir
from rerank_plugins.evaluation.metrics import score_run
from rerank_plugins.reranker import DEFAULT_MODEL, Reranker
from rerank_plugins.retrieval import FaissRetriever

__all__ = ["DemoSet", "add_parser", "bundled_set", "demo_corpus", "demo_queries", "judged_set", "run"]


def add_parser(commands: Any, name: str) -> None:
    parser = commands.add_parser(name, help=COMMANDS[name].help)
    parser.add_argument("--query", action="append", help="a query to run (repeatable; default: bundled claims)")
    parser.add_argument(
        "-k",
        "--candidates",
        type=int,
        default=None,
        help="candidates fetched by the bi-encoder (default: 10; 20 with --data)",
    )
    parser.add_argument("--top-n", type=int, default=3, help="rows shown per query")
    parser.add_argument("--shown", type=int, default=4, help="queries shown as tables (all are measured)")
    parser.add_argument("--bi-encoder", default=None, help="bi-encoder (default: bundled all-MiniLM-L6-v2)")
    parser.add_argument(
        "--data",
        default=None,
        help="BEIR directory with judgments (e.g. ../shared/data/scifact): judged test claims over the whole "
        "corpus, with the NDCG@10 and MRR@10 change the reranker makes (the eval extra)",
    )
    parser.add_argument("--claims", type=int, default=40, help="judged claims measured with --data")
    parser.add_argument(
        "--index-dir", default=None, help="with --data: save the corpus's FAISS index here, or load it if present"
    )
    add_reranker_options(parser)


def demo_corpus() -> list[dict[str, str]]:
    """The 200 bundled passages (id, topic, text)."""
    text = resources.files("rerank_plugins.data").joinpath("demo_corpus.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def demo_queries() -> list[str]:
    """The bundled claims the demo runs by default."""
    text = resources.files("rerank_plugins.data").joinpath("demo_queries.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


@dataclass(frozen=True)
class DemoSet:
    """What the demo searches and asks: passages, queries, and judgments when the data has them."""

    passages: list[dict[str, str]]
    queries: list[str]
    qrels: dict[str, dict[str, int]] | None = None
    query_ids: list[str] | None = None


def judged_set(directory: str, claims: int) -> DemoSet:
    """The first ``claims`` judged test queries of a BEIR directory, over its whole corpus."""
    data = load_beir(directory, "test")
    query_ids = [query_id for query_id in data.qrels if query_id in data.queries][:claims]
    return DemoSet(
        passages=[{"id": doc_id, "text": text} for doc_id, text in data.corpus.items()],
        queries=[data.queries[query_id] for query_id in query_ids],
        qrels={query_id: data.qrels[query_id] for query_id in query_ids},
        query_ids=query_ids,
    )


def bundled_set(queries: list[str] | None) -> DemoSet:
    return DemoSet(passages=demo_corpus(), queries=queries or demo_queries())


def _short(text: str, width: int = 72) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _measured(demo: DemoSet, hits_per_query: list[list[Any]], rankings: list[Any]) -> dict[str, dict[str, float]]:
    """NDCG@10 and MRR@10 of the bi-encoder's order and of the reranked order, by ir-measures."""
    assert demo.qrels is not None and demo.query_ids is not None
    before, after = {}, {}
    for query_id, hits, ranking in zip(demo.query_ids, hits_per_query, rankings, strict=True):
        before[query_id] = {hit.id: float(len(hits) - position) for position, hit in enumerate(hits)}
        after[query_id] = {hits[r.index].id: float(len(hits) - position) for position, r in enumerate(ranking)}
    recall_at = max(len(hits) for hits in hits_per_query)
    return {
        "bi-encoder": score_run(before, demo.qrels, recall_at),
        "reranked": score_run(after, demo.qrels, recall_at),
    }


PASSAGE_WINDOW = 64
"""Tokens per pair in the long-document part of the demo: short windows, so each passage is a focused one."""
CHAINED = 5
"""Candidates joined into one long document there."""


def _show_passages(console: Console, reranker: Reranker, query: str, hits: list[Any], top_n: int) -> None:
    """The query's candidates chained ``CHAINED`` at a time into long documents, reranked in windows, and each
    result shown with the passage it was ranked for highlighted: what ``compress="passage"`` hands an LLM."""
    chained = [" ".join(hit.text for hit in hits[i : i + CHAINED]) for i in range(0, len(hits), CHAINED)]
    options = {**reranker.options(), "show_progress_bar": False}
    options.update(long_documents="window", window_boundaries="sentence", max_length=PASSAGE_WINDOW)
    windowed = Reranker(**options)  # shares the loaded weights
    console.print(
        f"\n[bold]Long documents[/bold]: the {len(hits)} candidates of {query!r} chained {CHAINED} at a time, "
        f"scored in sentence windows of {PASSAGE_WINDOW} tokens; highlighted: the passage each result was ranked for"
    )
    for place, result in enumerate(windowed.rank(query, chained, top_n=min(top_n, 2)), 1):
        start, end = result.span or (0, len(result.document))
        console.print(
            f"[bold]#{place}[/bold] long document {result.index + 1} (relevance {result.relevance_score:.3f}): "
            f"passage of {end - start} of {len(result.document)} characters, best of {result.windows} windows"
        )
        console.print(highlighted(result))


MODEL_NOTE = (
    "The model ranks text like what it was trained on: minilm-l6-scifact-ce knows scientific claims against "
    "biomedical abstracts, and ranks poorly far from that domain (fine-tune it on yours: rerank-plugins train)."
)


def run(args: argparse.Namespace) -> int:
    console = Console()
    if args.data and args.query:
        raise ValueError("--query runs your own queries over the bundled corpus; --data runs judged ones: pick one")
    check_ready(args, ("faiss", "eval") if args.data else ("faiss",), bi_encoder=True)
    demo = judged_set(args.data, args.claims) if args.data else bundled_set(args.query)
    args.candidates = args.candidates or (20 if args.data else 10)
    try:
        reranker = reranker_from(args)
    except OSError as error:
        if args.model != DEFAULT_MODEL:
            raise
        raise OSError(
            f"{error}\nThe demo's default cross-encoder could not be loaded. Point --model at a local "
            "cross-encoder directory, e.g. --model ../shared/models/minilm-l6-scifact-ce"
        ) from error
    rows = demo.passages
    if demo.qrels is not None:  # a whole corpus: embedded with a progress bar, or loaded from --index-dir
        retriever = build_retriever(args, {row["id"]: row["text"] for row in rows}, console)
    else:
        with console.status(f"Indexing {len(rows)} passages with the bi-encoder…"):
            retriever = FaissRetriever.from_texts(
                [row["text"] for row in rows],
                ids=[row["id"] for row in rows],
                metadatas=[{"topic": row["topic"]} for row in rows],
                model=args.bi_encoder,
            )
    console.print(f"bi-encoder: {retriever.model_name}\ncross-encoder: {reranker!r}\n")
    queries = demo.queries
    hits_per_query = retriever.search_many(queries, k=args.candidates)
    rankings = reranker.rank_many(queries, [[hit.text for hit in hits] for hits in hits_per_query])
    shown = len(queries) if args.query else args.shown  # your own queries all; judged or bundled ones, a few
    for query, hits, ranking in list(zip(queries, hits_per_query, rankings, strict=True))[:shown]:
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
    if demo.qrels is not None:
        measured = _measured(demo, hits_per_query, rankings)
        summary = Table(title=f"{len(queries)} judged claims, top {args.candidates} of {len(rows)} passages")
        summary.add_column("order")
        for name in ("ndcg@10", "mrr@10"):
            summary.add_column(name, justify="right")
        for order, values in measured.items():
            summary.add_row(order, f"{values['ndcg@10']:.4f}", f"{values['mrr@10']:.4f}")
        console.print(summary)
        change = measured["reranked"]["ndcg@10"] - measured["bi-encoder"]["ndcg@10"]
        console.print(f"Reranking changed NDCG@10 by {change:+.4f} on these claims.")
    _show_passages(console, reranker, queries[0], hits_per_query[0], args.top_n)
    if "scifact" in reranker.model_name.lower():
        console.print(MODEL_NOTE)
    stats = reranker.stats
    console.print(
        f"\nReranked {stats.pairs} pairs ({stats.tokens} tokens, {stats.padding_waste:.0%} padding) "
        f"in {stats.seconds:.2f} s on {reranker.device} ({reranker.runtime} {reranker.precision})."
    )
    return 0
