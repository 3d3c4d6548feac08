"""``fine_tune``: train a cross-encoder on BEIR-format judgments and keep the epoch that ranks best on dev."""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from rerank_plugins.devices import cpu_has_native_bf16, resolve_device
from rerank_plugins.evaluation.pipeline import evaluate
from rerank_plugins.loading import check_model_reference
from rerank_plugins.quiet import quiet_loading
from rerank_plugins.reranker import Reranker
from rerank_plugins.retrieval import FaissRetriever
from rerank_plugins.training.card import write_model_card
from rerank_plugins.training.config import TrainingConfig
from rerank_plugins.training.data import load_training_data
from rerank_plugins.training.negatives import mine_hard_negatives, sample_groups
from rerank_plugins.training.report import EpochResult, TrainingReport
from rerank_plugins.training.steps import make_optimizer, train_epoch

__all__ = ["fine_tune"]

logger = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"


def _has_relevance_head(base: str) -> bool:
    """True for a one-logit cross-encoder; False for a plain encoder or bi-encoder (a head must be added)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(base)
    if not any(name.endswith("ForSequenceClassification") for name in getattr(config, "architectures", None) or []):
        return False
    if int(getattr(config, "num_labels", 1)) != 1:
        raise ValueError(
            f"{base!r} is a classifier with {config.num_labels} labels; fine-tuning needs a one-logit "
            "cross-encoder, or a plain encoder / bi-encoder checkpoint to add a fresh head to"
        )
    return True


def _prepare_output(output_dir: str | Path, overwrite: bool) -> Path:
    output = Path(output_dir)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        if not overwrite:
            raise FileExistsError(f"{str(output)!r} exists and is not empty: choose another directory or overwrite")
        if output.is_dir():
            shutil.rmtree(output)
        else:
            output.unlink()
    output.mkdir(parents=True, exist_ok=True)
    return output


def _autocast(precision: str, device: str) -> torch.dtype | None:
    kind = torch.device(device).type
    if precision == "fp32" or kind not in ("cpu", "cuda"):
        return None
    if precision == "bf16":
        return torch.bfloat16
    native = cpu_has_native_bf16() if kind == "cpu" else torch.cuda.is_bf16_supported()
    return torch.bfloat16 if native else None


def _load_base(base: str, fresh_head: bool, config: TrainingConfig, device: str) -> Any:
    from sentence_transformers import CrossEncoder

    options: dict[str, Any] = {"num_labels": 1, "max_length": config.max_length, "device": device}
    if fresh_head:
        options["activation_fn"] = torch.nn.Identity()  # raw logits, as the scores are trained
        logger.warning("%s has no relevance head: a fresh one-logit head is added and trained from scratch", base)
    try:
        # Attention dropout off: the fused CPU attention kernels do not take a dropout mask (much faster).
        with quiet_loading(base):  # a base without a relevance head makes transformers print a LOAD REPORT
            model = CrossEncoder(base, config_kwargs={"attention_probs_dropout_prob": 0.0}, **options)
    except Exception as error:  # transformers, safetensors and torch each raise their own types
        raise RuntimeError(f"Could not load the base model {base!r} for fine-tuning: {error}") from error
    if config.freeze_embeddings:
        model.model.get_input_embeddings().weight.requires_grad_(False)
    return model


def fine_tune(
    data_dir: str | Path,
    base_model: str,
    output_dir: str | Path,
    config: TrainingConfig | None = None,
    *,
    retriever: FaissRetriever | None = None,
    bi_encoder: str | None = None,
    device: str | None = None,
    overwrite: bool = False,
    show_progress_bar: bool = True,
) -> TrainingReport:
    """Fine-tune ``base_model`` on ``data_dir`` (BEIR format) and save the best epoch to ``output_dir``.

    Args:
        data_dir: corpus.jsonl, queries.jsonl and qrels/<config.train_split>.tsv (and the dev split, if named).
        base_model: a one-logit cross-encoder, or a plain encoder / bi-encoder checkpoint (a head is added).
        output_dir: where the model goes; it loads with ``Reranker(model=output_dir)`` and with
            ``sentence_transformers.CrossEncoder(output_dir)``, and holds README.md and training.json.
        config: the recipe (defaults: :class:`TrainingConfig`).
        retriever: a FaissRetriever over this corpus for hard negatives and dev candidates (else built with
            ``bi_encoder``, by default all-MiniLM-L6-v2, embedding in fp32 on any hardware so that the same
            data and seed mine the same negatives everywhere).
        device: "cpu", "cuda", ... (default: best available).
        overwrite: replace a non-empty ``output_dir`` instead of refusing.

    Returns:
        A :class:`TrainingReport`; the same facts are in ``output_dir/training.json``.
    """
    config = config or TrainingConfig()
    base = check_model_reference(base_model)
    data = load_training_data(
        data_dir, config.train_split, config.dev_split, config.dev_queries, config.dev_seed, config.max_train_queries
    )
    fresh_head = not _has_relevance_head(base)
    output = _prepare_output(output_dir, overwrite)
    device = resolve_device(device)
    autocast = _autocast(config.precision, device)
    torch.manual_seed(config.seed)
    model = _load_base(base, fresh_head, config, device)
    if retriever is None:  # fp32 whatever the hardware: the same hard negatives on every machine
        corpus = data.train.corpus
        retriever = FaissRetriever.from_texts(
            list(corpus.values()), ids=list(corpus), model=bi_encoder, precision="fp32"
        )
    elif retriever.embedder.precision != "fp32":
        logger.warning(
            "the retriever embeds in %s: hard negatives may differ from an fp32 one's (build it with "
            "precision='fp32' for the same negatives on every machine)",
            retriever.embedder.precision,
        )
    hard = mine_hard_negatives(retriever, data.train, config.negative_depth)
    steps_per_epoch = math.ceil(data.positive_pairs / config.groups_per_step)
    optimizer, scheduler = make_optimizer(model.model, config, steps_per_epoch * config.epochs)
    rng = random.Random(config.seed)
    logger.info(
        "training on %d queries (%d positives), %d dev queries, %d steps per epoch, autocast %s",
        len(data.train.queries),
        data.positive_pairs,
        len(data.dev.queries) if data.dev else 0,
        steps_per_epoch,
        autocast,
    )
    epochs: list[EpochResult] = []
    dev_retrieval: float | None = None
    train_seconds = 0.0
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        groups = sample_groups(data.train, hard, config.hard_negatives, config.random_negatives, rng)
        losses = train_epoch(
            model.model,
            model.tokenizer,
            groups,
            optimizer,
            scheduler,
            config,
            autocast,
            f"epoch {epoch}/{config.epochs}",
            show_progress_bar,
        )
        train_seconds += time.perf_counter() - started
        checkpoint = output / CHECKPOINTS / f"epoch-{epoch}"
        model.save_pretrained(str(checkpoint))
        dev_ndcg = None
        if data.dev is not None:
            scorer = Reranker(str(checkpoint), runtime="torch")  # a checkpoint is read once: no OpenVINO export
            report = evaluate(data.dev, retriever, scorer, top_k=config.dev_top_k)
            dev_ndcg = report.metrics["reranked"]["ndcg@10"]
            dev_retrieval = report.metrics["retrieval"]["ndcg@10"]
        epochs.append(EpochResult(epoch, losses, dev_ndcg, time.perf_counter() - started))
        logger.info("epoch %d: mean loss %.4f, dev NDCG@10 %s", epoch, epochs[-1].mean_loss, dev_ndcg)
    best = max(epochs, key=lambda e: (e.dev_ndcg_at_10 or 0.0, e.epoch)) if data.dev else epochs[-1]
    for item in (output / CHECKPOINTS / f"epoch-{best.epoch}").iterdir():
        shutil.move(str(item), output / item.name)
    shutil.rmtree(output / CHECKPOINTS)
    result = TrainingReport(
        base_model=base,
        fresh_head=fresh_head,
        data=str(data_dir),
        output_dir=str(output),
        train_queries=len(data.train.queries),
        positive_pairs=data.positive_pairs,
        dev_queries=len(data.dev.queries) if data.dev else 0,
        dev_retrieval_ndcg_at_10=dev_retrieval,
        epochs=epochs,
        best_epoch=best.epoch,
        train_seconds=train_seconds,
        pairs_per_second=data.positive_pairs * config.group_size * config.epochs / train_seconds,
        device=device,
        autocast=str(autocast).removeprefix("torch.") if autocast else "fp32",
        config=config.to_dict(),
        mining_precision=retriever.embedder.precision,
        trained_query_ids=sorted(data.train.queries),
    )
    (output / "training.json").write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
    write_model_card(output / "README.md", result, retriever.model_name)
    return result
