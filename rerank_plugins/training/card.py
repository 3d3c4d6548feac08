"""The model card saved with a fine-tuned model: base, data, recipe and the dev numbers that chose it."""

from __future__ import annotations

from pathlib import Path

from rerank_plugins.training.report import TrainingReport

__all__ = ["worse_warning", "write_model_card"]


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def worse_warning(report: TrainingReport) -> str:
    """One loud line: reranking with this model loses to the bi-encoder it was meant to improve."""
    return (
        f"**WARNING: this model is worse than no reranking.** Its dev NDCG@10 is "
        f"{_number(report.best.dev_ndcg_at_10)}, against {_number(report.dev_retrieval_ndcg_at_10)} for the "
        "bi-encoder's order alone: more data, more epochs or another base model are needed."
    )


def write_model_card(path: Path, report: TrainingReport, bi_encoder: str) -> None:
    """Write ``README.md`` for the model in ``report.output_dir``."""
    config = report.config
    rows = "\n".join(
        f"| {e.epoch} | {e.mean_loss:.4f} | {_number(e.dev_ndcg_at_10)} | {e.seconds:.0f} |"
        + (" kept |" if e.epoch == report.best_epoch else " |")
        for e in report.epochs
    )
    head = "a fresh one-logit head (the base had none)" if report.fresh_head else "the base's own relevance head"
    dev = f"qrels {config['dev_split']}" if config["dev_split"] else f"seeded hold-out, seed {config['dev_seed']}"
    embeddings = "frozen" if config["freeze_embeddings"] else "trained"
    lines = [
        "---",
        "library_name: sentence-transformers",
        "pipeline_tag: text-ranking",
        "tags: [cross-encoder, reranker, rerank-plugins]",
        "---",
        "# Cross-encoder fine-tuned with rerank-plugins",
        "",
        *([worse_warning(report), ""] if report.worse_than_retrieval else []),
        "Scores (query, document) pairs; higher is more relevant. Scores are raw logits unless the base had",
        "its own activation (recorded in `config_sentence_transformers.json`).",
        "",
        "```python",
        "from rerank_plugins import Reranker",
        f'Reranker(model="{report.output_dir}").rank("query", ["document one", "document two"])',
        "```",
        "",
        "## Base and data",
        f"- Base: `{report.base_model}`, with {head}.",
        f"- Data: `{report.data}`, qrels `{config['train_split']}`: {report.train_queries} training queries, "
        f"{report.positive_pairs} positive pairs; {report.dev_queries} dev queries ({dev}).",
        "- The licence of the model follows that of the data it was trained on.",
        "",
        "## Recipe",
        f"- Groups of 1 positive + {config['hard_negatives']} hard negatives (top {config['negative_depth']} of "
        f"bi-encoder `{bi_encoder}` in {report.mining_precision}, minus judged positives, resampled each epoch) + "
        f"{config['random_negatives']} random negatives; listwise softmax cross-entropy; "
        f"{config['groups_per_step']} groups per step.",
        f"- AdamW lr {config['learning_rate']} (head {config['head_learning_rate']}), weight decay "
        f"{config['weight_decay']}, {config['warmup_ratio']:.0%} linear warm-up then linear decay, grad-norm clip "
        f"{config['max_grad_norm']}, max_length {config['max_length']}, word embeddings {embeddings}, attention "
        f"dropout 0, seed {config['seed']}, {report.autocast} on {report.device}.",
        f"- {report.train_seconds:.0f} s of training steps, {report.pairs_per_second:.1f} pairs/s.",
        "",
        f"## Dev results (NDCG@10, reranking the bi-encoder top {config['dev_top_k']})",
        f"Bi-encoder alone: {_number(report.dev_retrieval_ndcg_at_10)}.",
        "",
        "| epoch | mean loss | dev NDCG@10 | seconds | |",
        "|---|---|---|---|---|",
        rows,
        "",
    ]
    text = "\n".join(lines)
    path.write_text(text, encoding="utf-8")
