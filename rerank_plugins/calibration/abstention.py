"""Does "nothing relevant" work? Held-out queries, half with their relevant candidates removed, at one threshold."""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from rerank_plugins.calibration.candidates import LabelledScores

__all__ = ["abstention_test"]


def _answered(rows: LabelledScores, probabilities: np.ndarray, threshold: float) -> dict[str, bool]:
    """Per query: whether any candidate reaches ``threshold`` (else the chain says it found nothing)."""
    passed = set(rows.queries[probabilities >= threshold].tolist())
    return {q: q in passed for q in np.unique(rows.queries).tolist()}


def abstention_test(
    rows: LabelledScores, probabilities: np.ndarray, threshold: float, seed: int = 0
) -> dict[str, Any]:
    """Split ``rows``' queries 50/50 (seeded); remove every relevant candidate of one half ("unanswerable")
    and leave the other unchanged ("answerable"); count who answers at ``threshold``.

    A query answers when at least one candidate's calibrated probability reaches ``threshold``.
    """
    queries = sorted(set(rows.queries.tolist()))
    random.Random(seed).shuffle(queries)
    removed, kept = set(queries[: len(queries) // 2]), set(queries[len(queries) // 2 :])
    relevant = rows.labels == 1
    drop = np.isin(rows.queries, list(removed)) & relevant
    unanswerable = _answered(
        LabelledScores(rows.queries[~drop], rows.documents[~drop], rows.margins[~drop], rows.labels[~drop]),
        probabilities[~drop], threshold,
    )  # fmt: skip
    answerable = _answered(rows, probabilities, threshold)
    with_relevant = set(rows.queries[relevant].tolist())
    answerable_with = [answerable[q] for q in kept if q in with_relevant]
    return {
        "threshold": threshold,
        "unanswerable_queries": len(removed),
        "abstained_on_unanswerable": sum(not unanswerable.get(q, False) for q in removed) / max(1, len(removed)),
        "answerable_queries": len(kept),
        "answered_answerable": sum(answerable[q] for q in kept) / max(1, len(kept)),
        "answerable_with_a_relevant_candidate": len(answerable_with),
        "answered_those": sum(answerable_with) / max(1, len(answerable_with)),
    }
