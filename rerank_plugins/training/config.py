"""The fine-tuning recipe as data: every choice that shapes the model, recorded in its model card."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from rerank_plugins.validation import check_count

__all__ = ["TrainingConfig"]


@dataclass(frozen=True)
class TrainingConfig:
    """Hyper-parameters of :func:`~rerank_plugins.training.fine_tune`; the defaults are the recipe of the
    SciFact model in ``../shared/models/minilm-l6-scifact-ce`` (groups of 1 positive + 5 hard + 2 random
    negatives, listwise softmax loss, AdamW 3e-5 with a 3e-4 head, 10 % warm-up, 3 epochs).

    Args:
        epochs: passes over the (query, positive) pairs; the epoch with the best dev NDCG@10 is kept.
        hard_negatives: negatives per group drawn (fresh each epoch) from the bi-encoder's top ``negative_depth``.
        random_negatives: negatives per group drawn uniformly from the corpus.
        negative_depth: how deep in the bi-encoder ranking hard negatives are mined (judged positives removed).
        groups_per_step: groups (of ``1 + hard_negatives + random_negatives`` pairs) per optimiser step.
        learning_rate: AdamW learning rate of the encoder.
        head_learning_rate: AdamW learning rate of the classification head (higher: it may start from scratch).
        weight_decay: AdamW weight decay.
        warmup_ratio: share of steps with a linear warm-up; then linear decay to zero.
        max_grad_norm: gradient-norm clipping.
        max_length: tokens per (query, document) pair; also saved as the model's max_length.
        freeze_embeddings: keep the word embeddings fixed (fewer weights to move on little data; faster).
        precision: "auto" trains under bf16 autocast where the hardware runs bf16 natively, else fp32.
        seed: seeds torch and the negative sampling.
        train_split: qrels file (``qrels/<split>.tsv``) with the training judgments.
        dev_split: qrels file with dev judgments; when None, ``dev_queries`` training queries are held out.
        dev_queries: size of the seeded hold-out when there is no ``dev_split`` (0: no dev, keep the last epoch).
        dev_seed: seed of that hold-out (shuffled numerically sorted ids, first ``dev_queries``).
        dev_top_k: bi-encoder candidates reranked per dev query to measure NDCG@10.
        max_train_queries: train on the first N training queries only (quick runs).
    """

    epochs: int = 3
    hard_negatives: int = 5
    random_negatives: int = 2
    negative_depth: int = 30
    groups_per_step: int = 2
    learning_rate: float = 3e-5
    head_learning_rate: float = 3e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    max_length: int = 256
    freeze_embeddings: bool = True
    precision: str = "auto"
    seed: int = 42
    train_split: str = "train"
    dev_split: str | None = None
    dev_queries: int = 80
    dev_seed: int = 13
    dev_top_k: int = 50
    max_train_queries: int | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "groups_per_step", "max_length", "negative_depth", "dev_top_k"):
            check_count(getattr(self, name), name, 1, error=ValueError)
        for name in ("hard_negatives", "random_negatives", "dev_queries"):
            check_count(getattr(self, name), name, 0, error=ValueError)
        if self.hard_negatives + self.random_negatives < 1:
            raise ValueError("a group needs at least one negative: hard_negatives + random_negatives >= 1")
        for name in ("learning_rate", "head_learning_rate", "max_grad_norm"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if not 0 <= self.warmup_ratio < 1 or self.weight_decay < 0:
            raise ValueError("warmup_ratio must be in [0, 1) and weight_decay >= 0")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', got {self.precision!r}")
        if self.max_train_queries is not None and self.max_train_queries < 1:
            raise ValueError(f"max_train_queries must be >= 1 or None, got {self.max_train_queries!r}")

    @property
    def group_size(self) -> int:
        """Pairs per group: one positive and its negatives."""
        return 1 + self.hard_negatives + self.random_negatives

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
