"""Fine-tuning a cross-encoder on the user's own relevance judgments (BEIR format), with mined hard negatives.

Needs the ``faiss`` extra (hard negatives come from :class:`~rerank_plugins.retrieval.FaissRetriever`).
"""

from rerank_plugins.training.config import TrainingConfig
from rerank_plugins.training.data import TrainingData, load_training_data
from rerank_plugins.training.fine_tune import fine_tune
from rerank_plugins.training.report import EpochResult, TrainingReport

__all__ = ["EpochResult", "TrainingConfig", "TrainingData", "TrainingReport", "fine_tune", "load_training_data"]
