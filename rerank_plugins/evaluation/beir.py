"""Reading BEIR-format data: corpus.jsonl, queries.jsonl and qrels/<split>.tsv."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BeirData", "check_beir_directory", "load_beir", "load_corpus", "load_qrels", "load_queries"]


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


def load_corpus(path: Path) -> dict[str, str]:
    """``corpus.jsonl`` as id -> text, with title and text joined as BEIR does."""
    corpus = {}
    with open(path, encoding="utf-8") as lines:
        for row in map(json.loads, lines):
            title = row.get("title") or ""
            corpus[str(row["_id"])] = f"{title} {row['text']}".strip()
    return corpus


def load_queries(path: Path) -> dict[str, str]:
    """``queries.jsonl`` as id -> text."""
    with open(path, encoding="utf-8") as lines:
        return {str(row["_id"]): row["text"] for row in map(json.loads, lines)}


def check_beir_directory(directory: str | Path, *splits: str) -> Path:
    """The directory as a Path, or FileNotFoundError naming the first BEIR file it lacks."""
    root = Path(directory)
    for name in ("corpus.jsonl", "queries.jsonl", *(f"qrels/{split}.tsv" for split in splits)):
        if not (root / name).is_file():
            raise FileNotFoundError(f"{root} is not BEIR-format data: {name} is missing")
    return root


def load_beir(directory: str | Path, split: str = "test") -> BeirData:
    """Load a BEIR data directory; only queries judged in ``split`` are kept."""
    root = check_beir_directory(directory, split)
    corpus = load_corpus(root / "corpus.jsonl")
    qrels = load_qrels(root / "qrels" / f"{split}.tsv")
    queries = {q: text for q, text in load_queries(root / "queries.jsonl").items() if q in qrels}
    return BeirData(corpus, queries, {query_id: qrels[query_id] for query_id in queries})
