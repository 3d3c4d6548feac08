"""Calibrated relevance at scoring time: the fitted map from the model's raw margin to P(relevant), applied.

``Reranker(model, calibration=FILE)`` applies a calibration (numpy only). Fitting one is a job one floor up,
in :mod:`rerank_plugins.calibrating`; nothing here imports it, so the core never loads the fitting code.
"""

from rerank_plugins.calibration.calibrator import CALIBRATION_FILE, Calibration

__all__ = ["CALIBRATION_FILE", "Calibration"]
