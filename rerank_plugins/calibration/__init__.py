"""Calibrated relevance: fit a map from the model's raw margin to P(relevant) on judged data, and apply it.

``Reranker(model, calibration=FILE)`` applies a calibration (numpy only); ``calibrate`` fits one on
BEIR-format data and needs the ``eval`` extra (scikit-learn, FAISS, ir-measures, matplotlib).
"""

from rerank_plugins.calibration.calibrator import CALIBRATION_FILE, Calibration
from rerank_plugins.calibration.candidates import LabelledScores
from rerank_plugins.calibration.diagram import write_reliability_diagram
from rerank_plugins.calibration.job import CalibrationRun, calibrate, split_queries

__all__ = [
    "CALIBRATION_FILE",
    "Calibration",
    "CalibrationRun",
    "LabelledScores",
    "calibrate",
    "split_queries",
    "write_reliability_diagram",
]
