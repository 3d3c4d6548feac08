"""Reading BEIR-format data: corpus.jsonl, queries.jsonl and qrels/<split>.tsv."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BeirData", "load_beir", "load_qrels"]


@dataclass(frozen=True)
class BeirData:
    """Documents (title and text joined, as BEIR does), queries, and graded judgments per query."""

    corpus: dict[str, str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    """``query-id corpus-id score`` rows (tab-separated, with a header line) as nested dicts."""
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8") as lines:
        header = next(lines, "")
        if not header.lower().startswith("query"):
            raise ValueError(f"{path} should start with a 'query-id corpus-id score' header, got {header!r}")
        for number, line in enumerate(lines, 2):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 3:
                raise ValueError(f"{path}:{number}: expected 3 tab-separated fields, got {len(fields)}")
            qrels.setdefault(fields[0], {})[fields[1]] = int(fields[2])
    return qrels


def load_beir(directory: str | Path, split: str = "test") -> BeirData:
    """Load a BEIR data directory; only queries judged in ``split`` are kept."""
    root = Path(directory)
    for name in ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv"):
        if not (root / name).is_file():
            raise FileNotFoundError(f"{root} is not BEIR-format data: {name} is missing")
    corpus = {}
    with open(root / "corpus.jsonl", encoding="utf-8") as lines:
        for row in map(json.loads, lines):
            title = row.get("title") or ""
            corpus[str(row["_id"])] = f"{title} {row['text']}".strip()
    qrels = load_qrels(root / "qrels" / f"{split}.tsv")
    with open(root / "queries.jsonl", encoding="utf-8") as lines:
        queries = {str(row["_id"]): row["text"] for row in map(json.loads, lines) if str(row["_id"]) in qrels}
    return BeirData(corpus, queries, {query_id: qrels[query_id] for query_id in queries})
