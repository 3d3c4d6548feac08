"""The optimisation itself: AdamW with a warm-up schedule, and a listwise softmax loss over each group."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import torch
from torch.nn import functional

from rerank_plugins.progress import tqdm
from rerank_plugins.training.config import TrainingConfig
from rerank_plugins.training.negatives import Group

__all__ = ["listwise_loss", "make_optimizer", "train_epoch"]


def listwise_loss(logits: torch.Tensor, group_size: int) -> torch.Tensor:
    """Softmax cross-entropy of each group's scores against its first (positive) document."""
    scores = logits.float().view(-1, group_size)
    return functional.cross_entropy(scores, torch.zeros(len(scores), dtype=torch.long, device=scores.device))


def make_optimizer(network: Any, config: TrainingConfig, total_steps: int) -> tuple[Any, Any]:
    """AdamW over the trainable weights, the encoder at ``learning_rate`` and the head at ``head_learning_rate``;
    linear warm-up then decay."""
    from transformers import get_linear_schedule_with_warmup

    encoder = {id(p) for p in network.base_model.parameters()}
    trainable = [p for p in network.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for p in trainable if id(p) in encoder], "lr": config.learning_rate},
            {"params": [p for p in trainable if id(p) not in encoder], "lr": config.head_learning_rate},
        ],
        weight_decay=config.weight_decay,
    )
    warmup = int(config.warmup_ratio * total_steps)
    return optimizer, get_linear_schedule_with_warmup(optimizer, warmup, total_steps)  # type: ignore[no-untyped-call]


def train_epoch(
    network: Any,
    tokenizer: Any,
    groups: Sequence[Group],
    optimizer: Any,
    scheduler: Any,
    config: TrainingConfig,
    autocast: torch.dtype | None,
    description: str,
    show_progress_bar: bool,
) -> list[float]:
    """One pass over ``groups``, ``groups_per_step`` at a time; returns the loss of every step."""
    network.train()
    device = next(network.parameters()).device
    losses: list[float] = []
    with tqdm(total=len(groups), desc=description, unit="group", disable=not show_progress_bar) as progress:
        for start in range(0, len(groups), config.groups_per_step):
            step = groups[start : start + config.groups_per_step]
            features = tokenizer(
                [group.query for group in step for _ in group.documents],
                [document for group in step for document in group.documents],
                padding=True,
                truncation="longest_first",
                max_length=config.max_length,
                return_tensors="pt",
            ).to(device)
            context = torch.autocast(device.type, dtype=autocast) if autocast is not None else nullcontext()
            with context:
                logits = network(**features).logits
            loss = listwise_loss(logits, config.group_size)
            loss.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(network.parameters(), config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            progress.update(len(step))
            progress.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}")
    network.eval()
    return losses
