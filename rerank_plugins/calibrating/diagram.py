"""The reliability diagram of a calibration's held-out report, saved as PNG (matplotlib, no screen needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rerank_plugins._optional import require

__all__ = ["write_reliability_diagram"]


def write_reliability_diagram(report: dict[str, Any], path: str | Path, title: str = "") -> Path:
    """Predicted probability against observed frequency per bin, before and after calibration, with counts."""
    matplotlib = require("matplotlib", "eval")
    matplotlib.use("Agg", force=False)
    pyplot = require("matplotlib.pyplot", "eval")
    figure, (curve, counts) = pyplot.subplots(
        2, 1, figsize=(6, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    curve.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    styles = {"uncalibrated": ("tab:red", "sigmoid(raw score)"), "calibrated": ("tab:blue", "calibrated")}
    width = 0.1 / (len(styles) + 1)
    for offset, (name, (color, label)) in enumerate(styles.items()):
        bins = [row for row in report["reliability"][name] if row["count"]]
        ece = report[name]["ece"]
        curve.plot(
            [row["mean_probability"] for row in bins], [row["frequency"] for row in bins],
            marker="o", color=color, label=f"{label} (ECE {ece:.3f})",
        )  # fmt: skip
        counts.bar(
            [row["low"] + (offset + 1) * width for row in report["reliability"][name]],
            [row["count"] for row in report["reliability"][name]], width=width, color=color, log=True,
        )  # fmt: skip
    curve.set_ylabel("observed share relevant")
    curve.set_xlim(0, 1)
    curve.set_ylim(0, 1)
    curve.legend(loc="upper left")
    curve.set_title(title or "Reliability on held-out queries")
    counts.set_xlabel("predicted P(relevant)")
    counts.set_ylabel("pairs")
    figure.tight_layout()
    target = Path(path)
    figure.savefig(target, dpi=110)
    pyplot.close(figure)
    return target
