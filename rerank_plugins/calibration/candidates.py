"""The pairs a calibration is fitted on: each query's first-stage candidates, judged by qrels, scored by the core."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rerank_plugins._optional import require
from rerank_plugins.results import p_any_relevant

if TYPE_CHECKING:
    from rerank_plugins.backend import RerankBackend
    from rerank_plugins.retrieval import FaissRetriever

__all__ = ["LabelledScores", "read_run", "retrieve_candidates", "score_candidates"]

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

    def per_query(self, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per query (in ``groups`` order): ``1 - prod(1 - p)`` over its candidates, and whether one is relevant."""
        rows = list(self.groups())
        independent = np.array([p_any_relevant(probabilities[positions].tolist()) for _, positions in rows])
        has_relevant = np.array([int(self.labels[positions].max()) for _, positions in rows])
        return independent, has_relevant


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
