"""Reading the judgments a cross-encoder is trained on, and saying loudly what had to be skipped."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from rerank_plugins.evaluation.beir import BeirData, check_beir_directory, load_corpus, load_qrels, load_queries
from rerank_plugins.evaluation.pipeline import dev_split

__all__ = ["TrainingData", "load_training_data"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingData:
    """Training queries (each with at least one positive on a known document) and optional dev queries."""

    train: BeirData
    dev: BeirData | None

    @property
    def positive_pairs(self) -> int:
        """(query, positive document) pairs: one training group each per epoch."""
        return sum(score > 0 for judged in self.train.qrels.values() for score in judged.values())


def _checked(
    path: Path, corpus: dict[str, str], queries: dict[str, str]
) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """Judgments of ``path`` on known queries and documents, for queries with a positive; warns with counts."""
    qrels = load_qrels(path)
    rows = sum(len(judged) for judged in qrels.values())
    unknown_queries = [q for q in qrels if q not in queries]
    unknown_docs = [(q, d) for q, judged in qrels.items() if q in queries for d in judged if d not in corpus]
    if unknown_queries or unknown_docs:
        logger.warning(
            "%s: skipped %d judgments on %d query ids missing from queries.jsonl (e.g. %s) and %d judgments on "
            "document ids missing from corpus.jsonl (e.g. %s), of %d judgments",
            path,
            sum(len(qrels[q]) for q in unknown_queries),
            len(unknown_queries),
            unknown_queries[:3],
            len(unknown_docs),
            [d for _, d in unknown_docs[:3]],
            rows,
        )
    kept = {q: {d: score for d, score in judged.items() if d in corpus} for q, judged in qrels.items() if q in queries}
    without_positive = sorted(q for q, judged in kept.items() if not any(score > 0 for score in judged.values()))
    if without_positive:
        logger.warning(
            "%s: skipped %d of %d queries with no positive judgment (score > 0) on a known document (e.g. %s)",
            path,
            len(without_positive),
            len(kept),
            without_positive[:3],
        )
    usable = {q: judged for q, judged in kept.items() if q not in without_positive}
    if not usable:
        raise ValueError(
            f"{path} gives no query with a positive judgment on a document of corpus.jsonl "
            f"({rows} judgments on {len(qrels)} queries read): nothing to train or measure on"
        )
    return {q: queries[q] for q in usable}, usable


def load_training_data(
    directory: str | Path,
    train_split: str = "train",
    dev_split_name: str | None = None,
    dev_queries: int = 80,
    dev_seed: int = 13,
    max_train_queries: int | None = None,
) -> TrainingData:
    """Load BEIR-format ``directory`` for training: ``qrels/<train_split>.tsv`` and, for dev, either
    ``qrels/<dev_split_name>.tsv`` or a seeded hold-out of ``dev_queries`` training queries.

    Judgments naming unknown queries or documents, and queries without a positive, are skipped with a
    warning that counts them. An empty corpus, or nothing left to train on, is a ``ValueError``.
    """
    root = check_beir_directory(directory, train_split, *([dev_split_name] if dev_split_name else []))
    corpus = load_corpus(root / "corpus.jsonl")
    if not corpus:
        raise ValueError(f"{root / 'corpus.jsonl'} holds no documents: there is nothing to train on")
    queries = load_queries(root / "queries.jsonl")
    train = BeirData(corpus, *_checked(root / "qrels" / f"{train_split}.tsv", corpus, queries))
    dev = None
    if dev_split_name:
        dev = BeirData(corpus, *_checked(root / "qrels" / f"{dev_split_name}.tsv", corpus, queries))
        overlap = set(dev.queries) & set(train.queries)
        if overlap:
            logger.warning("%d dev queries are also training queries; they stay out of training", len(overlap))
            train = _without(train, overlap)
    elif dev_queries:
        if dev_queries >= len(train.queries):
            raise ValueError(
                f"holding out {dev_queries} dev queries would leave none of the {len(train.queries)} training "
                "queries to train on: lower dev_queries or give a dev qrels split"
            )
        dev = dev_split(train, size=dev_queries, seed=dev_seed)
        train = _without(train, set(dev.queries))
    if not train.queries:
        raise ValueError("no training query is left once the dev queries are held out")
    if max_train_queries is not None:
        train = _without(train, set(list(train.queries)[max_train_queries:]))
    return TrainingData(train, dev)


def _without(data: BeirData, dropped: set[str]) -> BeirData:
    kept = [q for q in data.queries if q not in dropped]
    return BeirData(data.corpus, {q: data.queries[q] for q in kept}, {q: data.qrels[q] for q in kept})
