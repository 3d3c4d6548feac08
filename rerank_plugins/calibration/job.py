"""``calibrate``: score BEIR-format candidates, fit on some queries, measure on the others, and say what it buys."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rerank_plugins.calibration.calibrator import Calibration, Method, log_odds
from rerank_plugins.calibration.candidates import (
    Candidates,
    LabelledScores,
    read_run,
    retrieve_candidates,
    score_candidates,
)
from rerank_plugins.calibration.fitting import fit_parameters
from rerank_plugins.calibration.report import heldout_report

if TYPE_CHECKING:
    from rerank_plugins.reranker import Reranker
    from rerank_plugins.retrieval import FaissRetriever

__all__ = ["CalibrationRun", "calibrate", "fit_and_report", "split_queries"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CalibrationRun:
    """A fitted calibration with the scored pairs it was fitted on and measured on."""

    calibration: Calibration
    fit: LabelledScores
    heldout: LabelledScores

    def probabilities(self, rows: LabelledScores) -> np.ndarray:
        """Calibrated P(relevant) of ``rows``."""
        return self.calibration.apply(rows.margins)


def split_queries(query_ids: Sequence[str], heldout: float, seed: int) -> tuple[list[str], list[str]]:
    """A seeded split of whole queries (never one query's pairs on both sides): (fit, held-out)."""
    if not 0.0 < heldout < 1.0:
        raise ValueError(f"the held-out share must be between 0 and 1, got {heldout}")
    ordered = sorted(query_ids)
    if len(ordered) < 2:
        raise ValueError(f"need at least 2 judged queries to hold some out, got {len(ordered)}")
    random.Random(seed).shuffle(ordered)
    cut = max(1, min(len(ordered) - 1, round(len(ordered) * heldout)))
    return sorted(ordered[cut:]), sorted(ordered[:cut])


def _fit_any(rows: LabelledScores, probabilities: np.ndarray) -> dict[str, float] | None:
    """Platt on the log-odds of ``1 - prod(1 - p)`` against "has a relevant candidate" (``None``: one class only)."""
    independent, has_relevant = rows.per_query(probabilities)
    if has_relevant.min() == has_relevant.max():
        logger.warning("every fitted query has %s relevant candidate: P(any relevant) stays 1 - prod(1 - p)",
                       "a" if has_relevant.max() else "no")  # fmt: skip
        return None
    parameters = fit_parameters(log_odds(independent), has_relevant, "platt")  # the feature ``apply_any`` maps
    return {"slope": float(parameters["slope"]), "intercept": float(parameters["intercept"])}


def calibrate(
    reranker: Reranker,
    data: str | Path,
    *,
    split: str = "test",
    heldout: float = 0.3,
    heldout_split: str | None = None,
    top_k: int = 50,
    retriever: FaissRetriever | None = None,
    run: str | Path | None = None,
    method: Method = "platt",
    min_grade: int = 0,
    max_queries: int | None = None,
    seed: int = 0,
) -> CalibrationRun:
    """Fit ``reranker``'s calibration on BEIR-format ``data`` and measure it on held-out queries.

    Candidates are each query's ``top_k`` from ``run`` (a TREC run file) or ``retriever`` (FAISS; built
    over the corpus with the default bi-encoder when omitted). Queries judged in ``split`` are fitted on;
    a seeded ``heldout`` share of them is measured on, or the queries of ``heldout_split`` when given.
    ``max_queries`` keeps a seeded sample of each side, for a quicker fit.
    """
    from rerank_plugins.evaluation.beir import check_beir_directory, load_corpus, load_qrels, load_queries

    root = check_beir_directory(data, split, *([heldout_split] if heldout_split else []))
    corpus, all_queries = load_corpus(root / "corpus.jsonl"), load_queries(root / "queries.jsonl")
    qrels = load_qrels(root / "qrels" / f"{split}.tsv")
    judged = [q for q in qrels if q in all_queries]
    if heldout_split:
        heldout_qrels = load_qrels(root / "qrels" / f"{heldout_split}.tsv")
        held = sorted(q for q in heldout_qrels if q in all_queries and q not in qrels)
        fitted = sorted(judged)
        qrels = {**heldout_qrels, **qrels}
    else:
        fitted, held = split_queries(judged, heldout, seed)
    if max_queries is not None:
        fitted = sorted(random.Random(seed).sample(fitted, min(max_queries, len(fitted))))
        held = sorted(random.Random(seed + 1).sample(held, min(max_queries, len(held))))
    if not fitted or not held:
        raise ValueError(f"need judged queries on both sides, got {len(fitted)} to fit and {len(held)} held out")
    queries = {q: all_queries[q] for q in (*fitted, *held)}
    candidates: Candidates
    if run is not None:
        candidates = read_run(run, top_k)
    else:
        if retriever is None:
            from rerank_plugins.retrieval import FaissRetriever

            retriever = FaissRetriever.from_texts(list(corpus.values()), ids=list(corpus))
        candidates = retrieve_candidates(retriever, queries, top_k)
    logger.info("scoring the top-%d candidates of %d queries", top_k, len(queries))
    rows = score_candidates(reranker, queries, corpus, candidates, qrels, min_grade)
    settings = {"data": str(data), "split": split, "heldout_split": heldout_split, "heldout_share": heldout,
                "top_k": top_k, "candidates": "run file" if run is not None else "faiss", "min_grade": min_grade,
                "seed": seed}  # fmt: skip
    return fit_and_report(rows.subset(fitted), rows.subset(held), method, reranker.score_configuration(), settings)


def fit_and_report(
    fit: LabelledScores,
    heldout: LabelledScores,
    method: Method,
    belongs_to: dict[str, Any],
    settings: dict[str, Any],
) -> CalibrationRun:
    """Fit on ``fit``'s pairs and measure on ``heldout``'s: the step after scoring, so another method can be
    fitted on the same scores without scoring again."""
    parameters = fit_parameters(fit.margins, fit.labels, method)
    per_document = Calibration(method, parameters, belongs_to)
    fitted = replace(per_document, any_parameters=_fit_any(fit, per_document.apply(fit.margins).astype(np.float64)))
    report = heldout_report(heldout, fitted, fit, settings.get("seed", 0))
    return CalibrationRun(replace(fitted, report={"settings": {**settings, "method": method}, **report}), fit, heldout)
