"""``rerank-plugins rank``: a query and documents in (JSONL or one per line), ranked JSONL out."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from rerank_plugins.cli.options import add_reranker_options, reranker_from

__all__ = ["add_parser", "read_documents", "run"]


def add_parser(commands: Any, name: str) -> None:
    parser = commands.add_parser(name, help="rank documents for a query; JSONL out")
    parser.add_argument("--query", required=True, help="the query")
    parser.add_argument("--input", default="-", help="file of documents (default: stdin)")
    parser.add_argument(
        "--format",
        default="auto",
        choices=["auto", "jsonl", "lines"],
        help="jsonl: one JSON string or {'text': ...} per line; lines: one document per line",
    )
    parser.add_argument("--top-n", type=int, default=None)
    parser.add_argument("--score-threshold", type=float, default=None, help="minimum relevance_score (0-1)")
    add_reranker_options(parser)


def read_documents(stream: TextIO, form: str) -> list[str]:
    """Documents from ``stream``: JSON strings or objects with a ``text`` field, or plain lines."""
    lines = [line.rstrip("\n") for line in stream if line.strip()]
    if form == "auto":
        form = "jsonl" if lines and lines[0].lstrip()[:1] in ('"', "{") else "lines"
    if form == "lines":
        return lines
    documents = []
    for number, line in enumerate(lines, 1):
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"line {number} is not JSON: {error}") from error
        if isinstance(value, dict):
            value = value.get("text")
        if not isinstance(value, str):
            raise ValueError(f"line {number}: expected a JSON string or an object with a 'text' string")
        documents.append(value)
    return documents


def run(args: argparse.Namespace) -> int:
    if args.input == "-":
        documents = read_documents(sys.stdin, args.format)
    else:
        with open(args.input, encoding="utf-8") as stream:
            documents = read_documents(stream, args.format)
    ranking = reranker_from(args).rank(args.query, documents, top_n=args.top_n, score_threshold=args.score_threshold)
    for result in ranking:
        row = {
            "index": result.index,
            "score": result.score,
            "relevance_score": result.relevance_score,
            "text": result.document,
        }
        sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
    return 0
