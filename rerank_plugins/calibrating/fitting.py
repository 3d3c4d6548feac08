"""Fitting a map from raw margin to P(relevant) with scikit-learn: Platt (logistic) or isotonic regression."""

from __future__ import annotations

from typing import Any

import numpy as np

from rerank_plugins._optional import require
from rerank_plugins.calibration.calibrator import METHODS, Method

__all__ = ["fit_parameters"]

PLATT_C = 1e4
"""Inverse L2 strength of the logistic fit: two parameters on thousands of pairs need next to no shrinkage."""


def fit_parameters(margins: np.ndarray, labels: np.ndarray, method: Method = "platt") -> dict[str, Any]:
    """The parameters of a ``Calibration`` fitted on (margin, 0/1 label) pairs.

    Raises ``ValueError`` when the labels hold only one class: nothing to calibrate against.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    x = np.asarray(margins, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=int).reshape(-1)
    if len(x) != len(y) or not len(x):
        raise ValueError(f"need as many labels as margins, got {len(x)} margins and {len(y)} labels")
    if not np.all(np.isfinite(x)):
        raise ValueError("margins must be finite")
    positives = int(y.sum())
    if positives == 0 or positives == len(y):
        raise ValueError(
            f"the calibration pairs hold {positives} relevant of {len(y)}: both relevant and non-relevant "
            "candidates are needed (check the qrels split and --min-grade)"
        )
    if method == "platt":
        linear_model = require("sklearn.linear_model", "eval")
        model = linear_model.LogisticRegression(C=PLATT_C, max_iter=1000)
        model.fit(x.reshape(-1, 1), y)
        return {"slope": float(model.coef_[0, 0]), "intercept": float(model.intercept_[0])}
    isotonic = require("sklearn.isotonic", "eval")
    model = isotonic.IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    model.fit(x, y)
    return {"x": [float(v) for v in model.X_thresholds_], "y": [float(v) for v in model.y_thresholds_]}
