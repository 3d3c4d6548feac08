"""What a fine-tuning run reports, per epoch and in all: a leaf that the run and its model card both read."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["EpochResult", "TrainingReport"]


@dataclass
class EpochResult:
    """The losses of one epoch's steps and the dev NDCG@10 of the model it left (None without dev queries)."""

    epoch: int
    step_losses: list[float]
    dev_ndcg_at_10: float | None
    seconds: float

    @property
    def mean_loss(self) -> float:
        return sum(self.step_losses) / len(self.step_losses)


@dataclass
class TrainingReport:
    """What was trained on what, how, how fast, and how well; also saved as ``training.json``."""

    base_model: str
    fresh_head: bool
    data: str
    output_dir: str
    train_queries: int
    positive_pairs: int
    dev_queries: int
    dev_retrieval_ndcg_at_10: float | None
    epochs: list[EpochResult]
    best_epoch: int
    train_seconds: float
    pairs_per_second: float
    device: str
    autocast: str
    config: dict[str, Any] = field(default_factory=dict)
    mining_precision: str = "fp32"
    """The bi-encoder precision the hard negatives were mined in (fp32 unless a retriever was passed)."""
    trained_query_ids: list[str] = field(default_factory=list)
    """The queries the model was trained on: ``calibrate`` leaves them out (their scores run high)."""

    @property
    def best(self) -> EpochResult:
        return self.epochs[self.best_epoch - 1]

    @property
    def worse_than_retrieval(self) -> bool:
        """True when the kept model reranks the dev queries worse than the bi-encoder's own order."""
        kept, retrieval = self.best.dev_ndcg_at_10, self.dev_retrieval_ndcg_at_10
        return kept is not None and retrieval is not None and kept < retrieval

    def to_dict(self) -> dict[str, Any]:
        report = asdict(self)
        for epoch, result in zip(report["epochs"], self.epochs, strict=True):
            epoch["mean_loss"] = result.mean_loss
        return report
