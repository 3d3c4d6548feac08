"""Fitting a calibration: score BEIR-format candidates, fit the map to P(relevant) on some queries, report on others.

Needs the ``eval`` extra (scikit-learn, FAISS, ir-measures, matplotlib). The map it makes, and what applies
it at scoring time, is :class:`rerank_plugins.calibration.Calibration`: this job sits above the core, never under it.
"""

from rerank_plugins.calibrating.candidates import LabelledScores
from rerank_plugins.calibrating.diagram import write_reliability_diagram
from rerank_plugins.calibrating.job import CalibrationRun, calibrate, split_queries

__all__ = ["CalibrationRun", "LabelledScores", "calibrate", "split_queries", "write_reliability_diagram"]
