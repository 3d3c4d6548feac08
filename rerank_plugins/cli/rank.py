"""``rerank-plugins rank``: a query and documents in (JSONL or one per line), ranked JSONL out."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from rich.console import Console

from rerank_plugins.cli.commands import COMMANDS
from rerank_plugins.cli.highlight import highlighted
from rerank_plugins.cli.options import add_reranker_options, reranker_from
from rerank_plugins.results import RankedResult, Ranking

__all__ = ["InputDocument", "add_parser", "read_documents", "run"]

logger = logging.getLogger(__name__)

OUTPUT_FIELDS = ("index", "score", "relevance_score", "text", "span", "p_any_relevant")
"""The fields an output row has (``p_any_relevant`` with a calibration); other fields of a JSONL input object
come back beside them."""


@dataclass(frozen=True)
class InputDocument:
    """One document read from the input: its text and any other fields of its JSONL object (``id``...)."""

    text: str
    fields: dict[str, Any] = field(default_factory=dict)


def add_parser(commands: Any, name: str) -> None:
    parser = commands.add_parser(
        name,
        help=COMMANDS[name].help,
        description="Rank documents for a query. Reads one document per line, or JSONL (a JSON string or an "
        "object with a 'text' field per line, other fields such as 'id' come back on each row); writes one "
        "JSON row per document, best first: {index, score, relevance_score, text, span, ...}; span is "
        "[start, end], the characters of text that earned the score. With a calibration, "
        "relevance_score is P(relevant), each row has p_any_relevant (P(at least one document is relevant)) and "
        "stderr says it, also when --score-threshold leaves nothing.",
    )
    parser.add_argument("--query", required=True, help="the query")
    parser.add_argument("--input", default="-", help="file of documents; - reads stdin")
    parser.add_argument(
        "--format",
        default="auto",
        choices=["auto", "jsonl", "lines"],
        help="jsonl: a JSON string or {'text': ...} object per line; lines: one plain document per line; "
        "auto: jsonl when the first line is JSON, else lines",
    )
    parser.add_argument("--top-n", type=int, default=None, help="keep the best N documents (default: all)")
    parser.add_argument("--score-threshold", type=float, default=None, help="minimum relevance_score (0-1)")
    parser.add_argument(
        "--show",
        action="store_true",
        help="print the ranking for reading instead of JSONL: each document with the passage that earned its "
        "score highlighted (its span; with --long-documents window, the best window)",
    )
    add_reranker_options(parser)


def _json_line(line: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


def _document(value: Any, number: int) -> InputDocument:
    if isinstance(value, str):
        return InputDocument(value)
    if not isinstance(value, dict) or not isinstance(value.get("text"), str):
        raise ValueError(f"line {number}: expected a JSON string or an object with a 'text' string")
    fields = {key: item for key, item in value.items() if key != "text"}
    clashes = sorted(set(fields) & set(OUTPUT_FIELDS))
    if clashes:
        raise ValueError(
            f"line {number}: the field {clashes[0]!r} would be overwritten by the output's own {clashes[0]!r}; "
            "rename it in the input"
        )
    return InputDocument(value["text"], fields)


def read_documents(stream: TextIO, form: str) -> list[InputDocument]:
    """Documents from ``stream``: JSON strings or objects with a ``text`` field, or plain lines."""
    lines = [line.rstrip("\n") for line in stream if line.strip()]
    if form == "auto":
        first = _json_line(lines[0]) if lines else None
        form = "jsonl" if isinstance(first, (str, dict)) else "lines"
        logger.info("reading the input as %s (--format to choose)", form)
    if form == "lines":
        return [InputDocument(line) for line in lines]
    documents = []
    for number, line in enumerate(lines, 1):
        value = _json_line(line)
        if value is None:
            raise ValueError(
                f"line {number} is not JSON: {line[:60]!r}. For plain text, one document per line, pass --format lines"
            )
        documents.append(_document(value, number))
    return documents


def _row(result: RankedResult, p_any: float | None, document: InputDocument) -> dict[str, Any]:
    """One JSONL output row: the result's fields, then the input object's other fields."""
    row: dict[str, Any] = {
        "index": result.index,
        "score": result.score,
        "relevance_score": result.relevance_score,
        "text": result.document,
    }
    if result.span is not None:
        row["span"] = list(result.span)
    if p_any is not None:
        row["p_any_relevant"] = p_any
    return {**row, **document.fields}


def _show(ranking: Ranking) -> None:
    console = Console(file=sys.stdout, soft_wrap=False)
    for place, result in enumerate(ranking, 1):
        start, end = result.span if result.span is not None else (0, len(result.document))
        console.print(
            f"[bold]#{place}[/bold] document {result.index}  relevance {result.relevance_score:.3f}  "
            f"score {result.score:.3f}  passage {start}-{end} of {len(result.document)} characters"
        )
        console.print(highlighted(result))
        console.print()


def run(args: argparse.Namespace) -> int:
    source = "stdin" if args.input == "-" else args.input
    if args.input == "-":
        if sys.stdin.isatty():
            print(
                "rerank-plugins rank: reading documents from stdin, one per line; "
                "end with Ctrl-D (or pass --input FILE)",
                file=sys.stderr,
                flush=True,
            )
        documents = read_documents(sys.stdin, args.format)
    else:
        with open(args.input, encoding="utf-8") as stream:
            documents = read_documents(stream, args.format)
    if not documents:
        raise ValueError(f"no documents in {source}: give one document per line, or JSONL")
    ranking = reranker_from(args).rank(
        args.query, [document.text for document in documents], top_n=args.top_n, score_threshold=args.score_threshold
    )
    p_any = ranking.p_any_relevant
    if args.show:
        _show(ranking)
    else:
        for result in ranking:
            sys.stdout.write(json.dumps(_row(result, p_any, documents[result.index]), ensure_ascii=False) + "\n")
    if ranking.abstained:
        print(f"nothing relevant: P(at least one document is relevant) = {p_any:.3f} is below the calibration's "
              "abstention rule (--abstain)", file=sys.stderr)  # fmt: skip
    elif p_any is not None:
        kept = f"{len(ranking)} of {ranking.candidates} documents kept"
        print(f"P(at least one document is relevant) = {p_any:.3f}; {kept}", file=sys.stderr)
    elif not ranking:
        print(f"no document passed --score-threshold {args.score_threshold}", file=sys.stderr)
    return 0
