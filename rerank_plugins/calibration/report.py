"""The held-out report of a calibration: errors before and after, reliability, thresholds, P(any relevant)
and the "nothing relevant" test."""

from __future__ import annotations

from typing import Any

import numpy as np

from rerank_plugins.calibration.abstention import abstention_by_p_any, abstention_test
from rerank_plugins.calibration.calibrator import Calibration, sigmoid, threshold_for_precision
from rerank_plugins.calibration.candidates import LabelledScores
from rerank_plugins.calibration.measures import (
    TABLE_THRESHOLDS,
    calibration_errors,
    precision_curve,
    reliability_bins,
    threshold_table,
)

__all__ = ["ABSTENTION_PRECISION", "heldout_report"]


def _query_level(rows: LabelledScores, probabilities: np.ndarray, calibration: Calibration) -> dict[str, Any]:
    """How well P(at least one candidate is relevant) matches the queries that have a relevant candidate:
    ``1 - prod(1 - p)`` as it is (candidates taken as independent), and through the query-level map."""
    independent, has_relevant = rows.per_query(probabilities)
    return {
        "queries": len(has_relevant),
        "with_relevant_candidate": int(has_relevant.sum()),
        "independent": calibration_errors(independent, has_relevant),
        "calibrated": calibration_errors(calibration.apply_any(independent), has_relevant),
    }


def _counts(rows: LabelledScores) -> dict[str, int]:
    return {"queries": len(np.unique(rows.queries)), "pairs": len(rows), "relevant_pairs": int(rows.labels.sum())}


ABSTENTION_PRECISION = 0.8
"""The held-out precision whose threshold the "nothing relevant" test uses."""


def heldout_report(rows: LabelledScores, calibration: Calibration, fit: LabelledScores, seed: int) -> dict[str, Any]:
    """What ``calibration`` (fitted on ``fit``) does on the held-out ``rows``: the report its file keeps."""
    raw = sigmoid(rows.margins)
    calibrated = calibration.apply(rows.margins).astype(np.float64)
    curve = precision_curve(calibrated, rows.labels, rows.queries)
    threshold = threshold_for_precision(curve, ABSTENTION_PRECISION)
    abstention: dict[str, Any] = {"precision": ABSTENTION_PRECISION, "reached": threshold is not None}
    if threshold is not None:
        abstention.update(abstention_test(rows, calibrated, threshold, seed))
    abstention["by_threshold"] = [abstention_test(rows, calibrated, t, seed) for t in TABLE_THRESHOLDS]
    abstention["by_p_any"] = [abstention_by_p_any(rows, calibrated, calibration.p_any, level, seed)
                              for level in TABLE_THRESHOLDS]  # fmt: skip
    return {
        "fit": _counts(fit),
        "heldout": _counts(rows),
        "uncalibrated": calibration_errors(raw, rows.labels),
        "calibrated": calibration_errors(calibrated, rows.labels),
        "reliability": {
            "uncalibrated": reliability_bins(raw, rows.labels),
            "calibrated": reliability_bins(calibrated, rows.labels),
        },
        "thresholds": threshold_table(calibrated, rows.labels, rows.queries),
        "precision_curve": curve,
        "p_any_relevant": _query_level(rows, calibrated, calibration),
        "abstention": abstention,
    }
