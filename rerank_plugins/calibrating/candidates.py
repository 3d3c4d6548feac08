"""The pairs a calibration is fitted on: each query's first-stage candidates, judged by qrels, scored by the core."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rerank_plugins._optional import require

if TYPE_CHECKING:
    from rerank_plugins.backend import RerankBackend
    from rerank_plugins.retrieval import FaissRetriever

__all__ = ["LabelledScores", "QueryRows", "read_run", "retrieve_candidates", "score_candidates"]

Candidates = dict[str, list[str]]
"""Query id -> candidate document ids, best first."""


@dataclass(frozen=True)
class LabelledScores:
    """One row per (query, candidate): ids, the model's raw margin, and whether qrels judge it relevant."""

    queries: np.ndarray
    documents: np.ndarray
    margins: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.margins)

    def where(self, keep: np.ndarray) -> LabelledScores:
        """The rows where the boolean mask ``keep`` is true."""
        return LabelledScores(self.queries[keep], self.documents[keep], self.margins[keep], self.labels[keep])

    def subset(self, query_ids: Iterable[str]) -> LabelledScores:
        """The rows of ``query_ids`` only."""
        return self.where(np.isin(self.queries, np.asarray(list(query_ids), dtype=object)))

    def groups(self) -> Iterator[tuple[str, np.ndarray]]:
        """Each query id, sorted, with the positions of its rows: one sort, not one scan of all rows per query."""
        if not len(self):
            return
        order = np.argsort(self.queries.astype(str), kind="stable")
        ordered = self.queries[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        for start, positions in zip(starts, np.split(order, starts[1:]), strict=True):
            yield str(ordered[start]), positions

    def per_query(self) -> QueryRows:
        """One row per query (in ``groups`` order): what the query-level map and the abstention rule read."""
        ids, best, has_relevant, top_relevant = [], [], [], []
        for query, positions in self.groups():
            top = positions[int(np.argmax(self.margins[positions]))]
            ids.append(query)
            best.append(self.margins[top])
            has_relevant.append(int(self.labels[positions].max()))
            top_relevant.append(int(self.labels[top]))
        return QueryRows(np.array(ids, dtype=object), np.array(best, float), np.array(has_relevant, int),
                         np.array(top_relevant, int))  # fmt: skip

    def concat(self, other: LabelledScores) -> LabelledScores:
        """These rows, then ``other``'s."""
        return LabelledScores(*(np.concatenate([mine, theirs]) for mine, theirs in zip(
            (self.queries, self.documents, self.margins, self.labels),
            (other.queries, other.documents, other.margins, other.labels), strict=True)))  # fmt: skip


@dataclass(frozen=True)
class QueryRows:
    """Per query: its id, its best candidate's raw margin, whether any candidate is relevant (answerable), and
    whether the best one is (the answer a chain would give is right)."""

    ids: np.ndarray
    best_margins: np.ndarray
    has_relevant: np.ndarray
    top_relevant: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def where(self, keep: np.ndarray) -> QueryRows:
        """The queries where the boolean mask ``keep`` is true."""
        return QueryRows(self.ids[keep], self.best_margins[keep], self.has_relevant[keep], self.top_relevant[keep])


def retrieve_candidates(retriever: FaissRetriever, queries: Mapping[str, str], top_k: int) -> Candidates:
    """Each query's ``top_k`` documents from the FAISS retriever."""
    ids = list(queries)
    hits = retriever.search_many([queries[q] for q in ids], k=top_k)
    return {q: [hit.id for hit in row] for q, row in zip(ids, hits, strict=True)}


def read_run(path: str | Path, top_k: int) -> Candidates:
    """A TREC run file (``qid Q0 docid rank score tag``): each query's ``top_k`` documents by score."""
    ir_measures = require("ir_measures", "eval")
    rows: dict[str, list[tuple[float, str]]] = {}
    try:
        for row in ir_measures.read_trec_run(str(path)):
            rows.setdefault(str(row.query_id), []).append((float(row.score), str(row.doc_id)))
    except (ValueError, IndexError) as error:
        raise ValueError(f"{path} is not a TREC run file (qid Q0 docid rank score tag): {error}") from error
    return {q: [doc for _, doc in sorted(docs, key=lambda r: -r[0])[:top_k]] for q, docs in rows.items()}


def score_candidates(
    reranker: RerankBackend,
    queries: Mapping[str, str],
    corpus: Mapping[str, str],
    candidates: Candidates,
    qrels: Mapping[str, Mapping[str, int]],
    min_grade: int = 0,
) -> LabelledScores:
    """Score every (query, candidate) with ``reranker`` as configured; a grade above ``min_grade`` is relevant,
    an unjudged candidate is not."""
    rows = [(q, d) for q in queries if q in candidates for d in candidates[q]]
    missing = sorted({d for _, d in rows if d not in corpus})
    if missing:
        raise ValueError(f"{len(missing)} candidate ids are not in the corpus, e.g. {missing[:3]}")
    if not rows:
        raise ValueError("no query has candidates: check that the run file's query ids match the qrels")
    scored = reranker.pair_scores([(queries[q], corpus[d]) for q, d in rows])
    if any(s.margin is None for s in scored):
        raise ValueError("calibration needs the model's raw margins: calibrate with a local Reranker, not a service")
    return LabelledScores(
        np.array([q for q, _ in rows], dtype=object),
        np.array([d for _, d in rows], dtype=object),
        np.array([s.margin for s in scored], dtype=np.float64),
        np.array([int(qrels.get(q, {}).get(d, 0) > min_grade) for q, d in rows], dtype=int),
    )
