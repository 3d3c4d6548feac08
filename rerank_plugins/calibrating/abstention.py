"""Does "nothing relevant" work? Unanswerable queries (real, or made from answerable ones), the query-level rule
recommended for them, and what a rule does on held-out queries: abstention, answers, answer-triggering F1.

A query is answerable when one of its candidates is judged relevant. Unanswerable queries come from the data
(a run's queries with no qrels row, when the user says they are unanswerable), or are synthesised from an
answerable query: its relevant candidates removed (``removed``), or its text against another query's candidates
(``swapped``). A query whose candidate list would be empty is never made: an empty list abstains by itself and
says nothing about the rule.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from rerank_plugins.calibrating.candidates import LabelledScores, QueryRows

__all__ = [
    "ANSWER_RATE",
    "SYNTHETIC",
    "by_source",
    "UnanswerableSource",
    "outcomes",
    "real_rows",
    "recommend_rule",
    "removed_twins",
    "synthetic_id",
    "table",
    "wilson_lower",
]

UnanswerableSource = Literal["unjudged", "removed", "swapped"]
SYNTHETIC = "\x1f"
"""Separates an answerable query's id from the kind of unanswerable twin made from it."""
ANSWER_RATE = 0.9
"""The share of answerable queries the recommended rule keeps answering, by default (a one-sided 95 % bound)."""
Z_ONE_SIDED_95 = 1.645


def synthetic_id(query: str, kind: str) -> str:
    """The id of the unanswerable twin of ``query`` made by ``kind`` (``removed`` or ``swapped``)."""
    return f"{query}{SYNTHETIC}{kind}"


def real_rows(rows: LabelledScores) -> LabelledScores:
    """The rows of real queries only: synthetic twins repeat real candidates, so per-document figures leave them out."""
    return rows.where(np.array([SYNTHETIC not in q for q in rows.queries.tolist()], dtype=bool))


def removed_twins(rows: LabelledScores) -> LabelledScores:
    """For each answerable query with a non-relevant candidate: a twin with its relevant candidates removed."""
    answerable = set(rows.queries[rows.labels == 1].tolist())
    keep = np.isin(rows.queries, np.asarray(sorted(answerable), dtype=object)) & (rows.labels == 0)
    twins = rows.where(keep)
    ids = np.array([synthetic_id(q, "removed") for q in twins.queries.tolist()], dtype=object)
    return LabelledScores(ids, twins.documents, twins.margins, twins.labels)


def wilson_lower(successes: int, trials: int, z: float = Z_ONE_SIDED_95) -> float:
    """The Wilson score lower bound of a binomial proportion."""
    if trials == 0:
        return 0.0
    p = successes / trials
    centre = p + z * z / (2 * trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return (centre - spread) / (1 + z * z / trials)


def recommend_rule(p_any: np.ndarray, has_relevant: np.ndarray, answer_rate: float = ANSWER_RATE) -> dict[str, Any]:
    """The recommended rule: answer when P(any relevant) reaches the highest level that still answers
    ``answer_rate`` of the fitted answerable queries, by a one-sided 95 % lower bound (so held-out queries
    of the same kind are answered at that rate too, not just the fitted ones)."""
    if not 0.0 < answer_rate < 1.0:
        raise ValueError(f"the answer rate must be between 0 and 1, got {answer_rate}")
    answerable = np.sort(np.asarray(p_any, float)[np.asarray(has_relevant) == 1])[::-1]
    if not len(answerable):
        raise ValueError("no answerable query to fit the abstention rule on")
    n = len(answerable)
    k = next((k for k in range(1, n + 1) if wilson_lower(k, n) >= answer_rate), n)
    return {
        "answer_from": float(answerable[k - 1]),
        "answer_rate": answer_rate,
        "rule": "answer when P(any relevant) >= answer_from; else say nothing relevant",
        "fitted_answerable_queries": n,
        "fitted_answered_share": k / n,
    }


def _share(count: int, total: int) -> float | None:
    return count / total if total else None


def outcomes(queries: QueryRows, answers: np.ndarray) -> dict[str, Any]:
    """What a rule that answers ``answers`` (one bool per query) does: abstention on unanswerable queries,
    answers on answerable ones, and answer-triggering precision, recall and F1 (an answer counts as right when
    the query's best candidate is relevant; recall is over the answerable queries, as in WikiQA)."""
    answers = np.asarray(answers, bool)
    answerable = queries.has_relevant == 1
    right = answers & (queries.top_relevant == 1)
    precision = _share(int(right.sum()), int(answers.sum()))
    recall = _share(int(right.sum()), int(answerable.sum()))
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else 0.0
    return {
        "unanswerable_queries": int((~answerable).sum()),
        "abstained_on_unanswerable": _share(int((~answers & ~answerable).sum()), int((~answerable).sum())),
        "answerable_queries": int(answerable.sum()),
        "answered_answerable": _share(int((answers & answerable).sum()), int(answerable.sum())),
        "answer_precision": precision,
        "answer_recall": recall,
        "answer_f1": f1,
    }


def by_source(queries: QueryRows, answers: np.ndarray) -> dict[str, Any]:
    """``outcomes`` over all queries, then with the unanswerable ones of each source alone (beside the answerable)."""
    kinds = np.array([q.split(SYNTHETIC)[1] if SYNTHETIC in q else "data" for q in queries.ids.tolist()], dtype=object)
    result = {"all": outcomes(queries, answers)}
    answerable = queries.has_relevant == 1
    for kind in sorted(set(kinds[~answerable].tolist())):
        keep = answerable | (kinds == kind)
        result[kind] = outcomes(queries.where(keep), np.asarray(answers)[keep])
    return result


def table(queries: QueryRows, values: np.ndarray, levels: tuple[float, ...], key: str) -> list[dict[str, Any]]:
    """``outcomes`` of "answer when ``values`` (per query) reaches the level", for each level."""
    return [{key: level, **outcomes(queries, np.asarray(values) >= level)} for level in levels]

