"""Calibrated relevance on SciFact: fit on train claims, measure on the 300 test claims.

The same steps as ``rerank-plugins calibrate --split train --heldout-split test --max-queries 300
--unanswerable removed swapped`` (the
default ``Reranker`` of the SciFact model, FAISS top 50), once: the candidates are scored once and both
Platt and isotonic are fitted on those scores. Writes ``results/calibration_scifact.json`` (both reports,
held-out ECE, Brier, log-loss, the threshold table and P(any relevant) with synthesised unanswerable claims:
each claim without its relevant candidates, and against another claim's candidates) and the reliability
diagram ``docs/calibration-scifact.png``. Also fits on half of the test claims and measures on the other
half (seeded), to separate the train-to-test shift from the calibration itself.

    HF_HUB_OFFLINE=1 PYTHONPATH=. .venv/bin/python benchmarks/calibration_scifact.py [--index-dir .cache/scifact-index]

The scored pairs are kept in ``.cache/calibration_scifact_rows.npz``; ``--reuse`` fits and reports from
them again without scoring (for a change to fitting or reporting only).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from rerank_plugins import Reranker
from rerank_plugins.calibrating import (
    CalibrationRun,
    LabelledScores,
    calibrate,
    split_queries,
    write_reliability_diagram,
)
from rerank_plugins.calibrating.job import fit_and_report
from rerank_plugins.evaluation.beir import load_corpus
from rerank_plugins.retrieval import FaissRetriever
from tests.paths import SCIFACT, TRAINED_MODEL

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = Path(__file__).parent / "results" / "calibration_scifact.json"
DIAGRAM = ROOT / "docs" / "calibration-scifact.png"
ROWS = ROOT / ".cache" / "calibration_scifact_rows.npz"


def _save(run: CalibrationRun, seconds: float) -> None:
    arrays = {f"{side}_{name}": getattr(getattr(run, side), name)
              for side in ("fit", "heldout") for name in ("queries", "documents", "margins", "labels")}  # fmt: skip
    np.savez(ROWS, **{k: v.astype(str) if v.dtype == object else v for k, v in arrays.items()})
    (ROWS.with_suffix(".json")).write_text(json.dumps({"belongs_to": run.calibration.belongs_to, "seconds": seconds,
                                                       "settings": run.calibration.report["settings"]}))  # fmt: skip


def _load() -> tuple[LabelledScores, LabelledScores, dict[str, Any], dict[str, Any], float]:
    data = np.load(ROWS)
    sides = [LabelledScores(*(data[f"{side}_{name}"].astype(object) if name in ("queries", "documents")
                              else data[f"{side}_{name}"] for name in ("queries", "documents", "margins", "labels")))
             for side in ("fit", "heldout")]  # fmt: skip
    meta = json.loads(ROWS.with_suffix(".json").read_text())
    return sides[0], sides[1], meta["belongs_to"], meta["settings"], meta.get("seconds", 0.0)


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    keys = ("fit", "heldout", "uncalibrated", "calibrated", "thresholds", "p_any_relevant", "warnings")
    summary = {key: report[key] for key in keys}
    summary["fit"] = {k: v for k, v in report["fit"].items() if k != "margin_quantiles"}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index-dir", default=str(ROOT / ".cache" / "scifact-index"))
    parser.add_argument("--max-queries", type=int, default=300)
    parser.add_argument("--reuse", action="store_true", help="fit and report from the saved scores")
    args = parser.parse_args()
    reranker = Reranker(str(TRAINED_MODEL), calibration=None)
    if args.reuse:
        fit, held, belongs_to, settings, seconds = _load()
        platt = fit_and_report(fit, held, "platt", belongs_to, settings)
    else:
        index = Path(args.index_dir)
        if (index / "config.json").is_file():
            retriever = FaissRetriever.load(index)
        else:
            corpus = load_corpus(SCIFACT / "corpus.jsonl")
            retriever = FaissRetriever.from_texts(list(corpus.values()), ids=list(corpus))
            retriever.save(index)
        started = time.perf_counter()
        platt = calibrate(
            reranker, SCIFACT, split="train", heldout_split="test", top_k=50, retriever=retriever,
            max_queries=args.max_queries, unanswerable=["removed", "swapped"],
        )  # fmt: skip
        seconds = time.perf_counter() - started
        _save(platt, seconds)
    settings = platt.calibration.report["settings"]
    belongs_to = platt.calibration.belongs_to
    isotonic = fit_and_report(platt.fit, platt.heldout, "isotonic", belongs_to, settings)
    fit_ids, held_ids = split_queries(sorted(set(platt.heldout.queries.tolist())), 0.5, seed=0)
    within_test = {
        method: _summary(
            fit_and_report(
                platt.heldout.subset(fit_ids), platt.heldout.subset(held_ids), method, belongs_to,
                {**settings, "split": "test (half)", "heldout_split": "test (other half)"},
            ).calibration.report
        )
        for method in ("platt", "isotonic")
    }  # fmt: skip
    write_reliability_diagram(
        platt.calibration.report, DIAGRAM, title="SciFact: fit on 300 train claims, held-out 300 test claims"
    )
    result = {
        "model": str(TRAINED_MODEL.name),
        "reranker": repr(reranker),
        "score_seconds": seconds,
        "platt": {"parameters": platt.calibration.parameters, "any_parameters": platt.calibration.any_parameters,
                  "abstention": platt.calibration.abstention, **_summary(platt.calibration.report)},  # fmt: skip
        "isotonic": _summary(isotonic.calibration.report),
        "fit_on_half_of_test": within_test,
    }
    OUTPUT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for name in ("platt", "isotonic"):
        row = result[name]
        print(name, "ECE", row["uncalibrated"]["ece"], "->", row["calibrated"]["ece"], "P(any)", row["p_any_relevant"])
    print("wrote", OUTPUT, "and", DIAGRAM)


if __name__ == "__main__":
    main()
