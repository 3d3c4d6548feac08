"""The held-out report of a calibration: errors before and after, skill and separation, reliability, thresholds,
P(any relevant) and the "nothing relevant" rule on answerable and unanswerable queries."""

from __future__ import annotations

from typing import Any

import numpy as np

from rerank_plugins.calibrating.abstention import by_source, outcomes, real_rows, table
from rerank_plugins.calibrating.candidates import LabelledScores, QueryRows
from rerank_plugins.calibrating.measures import (
    TABLE_THRESHOLDS,
    calibration_errors,
    precision_curve,
    reliability_bins,
    threshold_table,
)
from rerank_plugins.calibration.calibrator import Calibration, sigmoid
from rerank_plugins.calibration.drift import margin_quantiles

__all__ = ["SEPARATION_AUC", "fit_summary", "heldout_report", "separation_warnings"]

SEPARATION_AUC = 0.75
"""Below this pair ROC AUC the model barely tells relevant from irrelevant candidates on the data: no
calibration makes its probabilities useful, and fine-tuning comes first."""


def _counts(rows: LabelledScores, queries: QueryRows) -> dict[str, int]:
    return {
        "queries": len(queries),
        "answerable_queries": int(queries.has_relevant.sum()),
        "pairs": len(rows),
        "relevant_pairs": int(rows.labels.sum()),
    }


def fit_summary(rows: LabelledScores, settings: dict[str, Any]) -> dict[str, Any]:
    """What the calibration was fitted on: the data, its counts, and its margins' quantiles (for drift)."""
    return {**settings, **_counts(rows, rows.per_query()), "margin_quantiles": margin_quantiles(rows.margins)}


def _query_level(queries: QueryRows, calibration: Calibration) -> dict[str, Any]:
    """P(any relevant) on held-out queries, and what the recommended rule and other levels do with it."""
    if calibration.any_parameters is None:
        return {
            "fitted": False,
            "why": "no unanswerable query was fitted (calibrate --unanswerable ...): P(any relevant) is unknown "
            "and there is no abstention rule",
        }
    p_any = calibration.apply_any(queries.best_margins)
    result: dict[str, Any] = {
        "fitted": True,
        "queries": len(queries),
        "answerable_queries": int(queries.has_relevant.sum()),
        "errors": calibration_errors(p_any, queries.has_relevant),
        "by_level": table(queries, p_any, TABLE_THRESHOLDS, "p_any_level"),
    }
    if calibration.abstention is not None:
        rule = calibration.answer_from
        result["rule"] = {**calibration.abstention, **by_source(queries, p_any >= rule)}
    result["always_answer"] = outcomes(queries, np.ones(len(queries), bool))
    return result


def separation_warnings(report: dict[str, Any]) -> list[str]:
    """Plain words when the model barely separates relevant from irrelevant candidates on this data."""
    warnings = []
    auc = report["calibrated"].get("roc_auc")
    if auc is not None and auc < SEPARATION_AUC:
        warnings.append(
            f"the model barely separates relevant from irrelevant candidates on this data (pair ROC AUC {auc:.2f}, "
            f"under {SEPARATION_AUC}): calibration cannot make its scores useful here; fine-tune it on this data "
            "first ('rerank-plugins train'), then calibrate"
        )
    query_level = report.get("p_any_relevant", {})
    if query_level.get("fitted"):
        query_auc = query_level["errors"].get("roc_auc")
        if query_auc is not None and query_auc < SEPARATION_AUC:
            warnings.append(
                f"P(any relevant) barely separates answerable from unanswerable queries (ROC AUC {query_auc:.2f}): "
                "the abstention rule will cost many answers for each abstention it gets right"
            )
    return warnings


def heldout_report(rows: LabelledScores, calibration: Calibration) -> dict[str, Any]:
    """What ``calibration`` does on the held-out ``rows``: the report its file keeps.

    Per-document figures use the real candidates only; the query-level ones use every query, synthetic
    unanswerable twins included.
    """
    real, queries = real_rows(rows), rows.per_query()
    raw = sigmoid(real.margins)
    calibrated = calibration.apply(real.margins).astype(np.float64)
    report: dict[str, Any] = {
        "heldout": _counts(rows, queries),
        "uncalibrated": calibration_errors(raw, real.labels),
        "calibrated": calibration_errors(calibrated, real.labels),
        "reliability": {
            "uncalibrated": reliability_bins(raw, real.labels),
            "calibrated": reliability_bins(calibrated, real.labels),
        },
        "thresholds": threshold_table(calibrated, real.labels, real.queries),
        "precision_curve": precision_curve(calibrated, real.labels, real.queries),
        "p_any_relevant": _query_level(queries, calibration),
    }
    report["warnings"] = separation_warnings(report)
    return report
