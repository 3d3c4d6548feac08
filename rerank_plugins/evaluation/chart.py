"""A before/after bar chart of an evaluation report, written as PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rerank_plugins._optional import require
from rerank_plugins.evaluation.pipeline import EvalReport

__all__ = ["write_chart"]


def write_chart(report: EvalReport, path: str | Path, title: str = "") -> Path:
    """Grouped bars: one group per metric, one bar per stage (retrieval, reranked, fused)."""
    matplotlib: Any = require("matplotlib", "eval")
    matplotlib.use("Agg")
    pyplot = require("matplotlib.pyplot", "eval")
    stages = list(report.metrics)
    metric_names = list(report.metrics[stages[0]])
    figure, axes = pyplot.subplots(figsize=(7, 4), dpi=120)
    width = 0.8 / len(stages)
    for offset, stage in enumerate(stages):
        values = [report.metrics[stage][name] for name in metric_names]
        positions = [i + (offset - (len(stages) - 1) / 2) * width for i in range(len(metric_names))]
        bars = axes.bar(positions, values, width, label=stage)
        axes.bar_label(bars, fmt="%.3f", fontsize=7)
    axes.set_xticks(range(len(metric_names)), metric_names)
    axes.set_ylim(0, 1.18)
    axes.set_ylabel("score")
    axes.set_title(title or f"{report.queries} queries, top-{report.top_k} candidates")
    axes.legend(loc="upper center", ncol=len(stages), frameon=False)
    figure.tight_layout()
    target = Path(path)
    figure.savefig(target)
    pyplot.close(figure)
    return target
