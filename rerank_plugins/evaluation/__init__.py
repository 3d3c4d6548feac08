"""Retrieval-then-rerank evaluation on BEIR-format data, with metrics from ir-measures."""

from rerank_plugins.evaluation.beir import BeirData, load_beir
from rerank_plugins.evaluation.metrics import score_run
from rerank_plugins.evaluation.pipeline import EvalReport, evaluate

__all__ = ["BeirData", "EvalReport", "evaluate", "load_beir", "score_run"]
