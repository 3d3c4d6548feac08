"""Does "nothing relevant" work? Held-out queries, half with their relevant candidates removed, under one rule.

Two rules a chain can branch on: no candidate reaches a ``score_threshold`` (per document), or the
query's P(at least one candidate is relevant) is below a level (per query).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np

from rerank_plugins.calibration.candidates import LabelledScores

__all__ = ["abstention_by_p_any", "abstention_test"]

Answers = Callable[[LabelledScores, np.ndarray], dict[str, bool]]
"""Given rows and their calibrated probabilities: per query, whether the chain answers."""


def _by_threshold(threshold: float) -> Answers:
    def answers(rows: LabelledScores, probabilities: np.ndarray) -> dict[str, bool]:
        passed = set(rows.queries[probabilities >= threshold].tolist())
        return {q: q in passed for q in np.unique(rows.queries).tolist()}

    return answers


def _by_p_any(p_any: Callable[[list[float]], float], level: float) -> Answers:
    def answers(rows: LabelledScores, probabilities: np.ndarray) -> dict[str, bool]:
        return {q: p_any(probabilities[positions].tolist()) >= level for q, positions in rows.groups()}

    return answers


def _mixed_test(rows: LabelledScores, probabilities: np.ndarray, answers: Answers, seed: int) -> dict[str, Any]:
    queries = sorted(set(rows.queries.tolist()))
    random.Random(seed).shuffle(queries)
    removed, kept = set(queries[: len(queries) // 2]), set(queries[len(queries) // 2 :])
    relevant = rows.labels == 1
    keep = ~(np.isin(rows.queries, list(removed)) & relevant)
    unanswerable = answers(rows.where(keep), probabilities[keep])  # a query left with no candidate answers nothing
    answerable = answers(rows, probabilities)
    with_relevant = set(rows.queries[relevant].tolist())
    answerable_with = [answerable[q] for q in kept if q in with_relevant]
    return {
        "unanswerable_queries": len(removed),
        "abstained_on_unanswerable": sum(not unanswerable.get(q, False) for q in removed) / max(1, len(removed)),
        "answerable_queries": len(kept),
        "answered_answerable": sum(answerable[q] for q in kept) / max(1, len(kept)),
        "answerable_with_a_relevant_candidate": len(answerable_with),
        "answered_those": sum(answerable_with) / max(1, len(answerable_with)),
    }


def abstention_test(rows: LabelledScores, probabilities: np.ndarray, threshold: float, seed: int = 0) -> dict[str, Any]:
    """Split ``rows``' queries 50/50 (seeded); remove every relevant candidate of one half ("unanswerable"),
    leave the other unchanged ("answerable"); a query answers when a candidate reaches ``threshold``."""
    return {"threshold": threshold, **_mixed_test(rows, probabilities, _by_threshold(threshold), seed)}


def abstention_by_p_any(
    rows: LabelledScores, probabilities: np.ndarray, p_any: Callable[[list[float]], float], level: float, seed: int = 0
) -> dict[str, Any]:
    """The same test, where a query answers when its P(at least one candidate is relevant) reaches ``level``."""
    return {"p_any_level": level, **_mixed_test(rows, probabilities, _by_p_any(p_any, level), seed)}
