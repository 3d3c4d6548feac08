"""How well probabilities match outcomes (ECE, Brier, log-loss, reliability bins) and what thresholds buy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rerank_plugins._optional import require

__all__ = [
    "TABLE_THRESHOLDS",
    "calibration_errors",
    "expected_calibration_error",
    "precision_curve",
    "reliability_bins",
    "threshold_table",
]

BINS = 10
TABLE_THRESHOLDS = tuple(round(0.1 * step, 1) for step in range(1, 10))
CURVE_THRESHOLDS = tuple(round(0.01 * step, 2) for step in range(1, 100))


def reliability_bins(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS) -> list[dict[str, Any]]:
    """Equal-width bins over [0, 1]: each bin's count, mean predicted probability and observed frequency."""
    p, y = np.asarray(probabilities, float), np.asarray(labels, float)
    which = np.minimum((p * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        inside = which == b
        count = int(inside.sum())
        rows.append(
            {
                "low": b / bins,
                "high": (b + 1) / bins,
                "count": count,
                "mean_probability": float(p[inside].mean()) if count else None,
                "frequency": float(y[inside].mean()) if count else None,
            }
        )
    return rows


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS) -> float:
    """ECE: the count-weighted mean gap between predicted probability and observed frequency per bin."""
    rows = reliability_bins(probabilities, labels, bins)
    total = sum(row["count"] for row in rows)
    return float(
        sum(row["count"] * abs(row["mean_probability"] - row["frequency"]) for row in rows if row["count"]) / total
    )


def calibration_errors(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float | None]:
    """ECE (10 bins), Brier score, Brier skill, log-loss and ROC AUC of ``probabilities`` against 0/1 ``labels``.

    Brier skill is ``1 - Brier / Brier of always saying the base rate``: 0 is no better than knowing how often
    things are relevant, 1 is perfect; a low ECE with a skill near 0 is calibrated but useless. ROC AUC says
    how well the scores separate the two classes at all (``None`` when only one class is present).
    """
    metrics = require("sklearn.metrics", "eval")
    p = np.clip(np.asarray(probabilities, float), 1e-7, 1 - 1e-7)
    y = np.asarray(labels, int)
    brier = float(metrics.brier_score_loss(y, p))
    base = float(y.mean()) if len(y) else 0.0
    reference = base * (1 - base)
    both = 0 < y.sum() < len(y)
    return {
        "ece": expected_calibration_error(p, y),
        "brier": brier,
        "brier_skill": 1 - brier / reference if reference else None,
        "log_loss": float(metrics.log_loss(y, p, labels=[0, 1])),
        "roc_auc": float(metrics.roc_auc_score(y, p)) if both else None,
    }


def _at_threshold(
    threshold: float, probabilities: np.ndarray, labels: np.ndarray, queries: np.ndarray
) -> dict[str, Any]:
    kept = probabilities >= threshold
    relevant_kept = int((kept & (labels == 1)).sum())
    relevant = int(labels.sum())
    answered = np.unique(queries[kept])
    all_queries = np.unique(queries)
    return {
        "threshold": threshold,
        "precision": relevant_kept / int(kept.sum()) if kept.any() else None,
        "recall": relevant_kept / relevant if relevant else None,
        "no_document_share": (len(all_queries) - len(answered)) / len(all_queries) if len(all_queries) else None,
        "documents_per_query": float(kept.sum()) / len(all_queries) if len(all_queries) else 0.0,
        "documents": int(kept.sum()),
    }


def threshold_table(
    probabilities: np.ndarray, labels: np.ndarray, queries: Sequence[str] | np.ndarray,
    thresholds: Sequence[float] = TABLE_THRESHOLDS,
) -> list[dict[str, Any]]:  # fmt: skip
    """For each threshold: precision and recall of the documents kept (recall over the relevant candidates),
    the share of queries left with no document, and the documents kept per query."""
    p, y, q = np.asarray(probabilities, float), np.asarray(labels, int), np.asarray(queries)
    return [_at_threshold(t, p, y, q) for t in thresholds]


def precision_curve(
    probabilities: np.ndarray, labels: np.ndarray, queries: Sequence[str] | np.ndarray
) -> list[dict[str, Any]]:
    """The threshold table at every 0.01, from which the threshold for a wanted precision is read."""
    return threshold_table(probabilities, labels, queries, CURVE_THRESHOLDS)
