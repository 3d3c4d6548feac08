"""Calibrated relevance on SciFact: fit on train claims, measure on the 300 test claims.

The same steps as ``rerank-plugins calibrate --split train --heldout-split test --max-queries 300`` (the
default ``Reranker`` of the SciFact model, FAISS top 50), once: the candidates are scored once and both
Platt and isotonic are fitted on those scores. Writes ``results/calibration_scifact.json`` (both reports,
held-out ECE, Brier, log-loss, the threshold table and the "nothing relevant" test) and the reliability
diagram ``docs/calibration-scifact.png``. Also fits on half of the test claims and measures on the other
half (seeded), to separate the train-to-test shift from the calibration itself.

    HF_HUB_OFFLINE=1 PYTHONPATH=. .venv/bin/python benchmarks/calibration_scifact.py [--index-dir .cache/scifact-index]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from rerank_plugins import Reranker
from rerank_plugins.calibration import calibrate, split_queries, write_reliability_diagram
from rerank_plugins.calibration.job import fit_and_report
from rerank_plugins.evaluation.beir import load_corpus
from rerank_plugins.retrieval import FaissRetriever
from tests.conftest import SCIFACT, TRAINED_MODEL

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = Path(__file__).parent / "results" / "calibration_scifact.json"
DIAGRAM = ROOT / "docs" / "calibration-scifact.png"


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    return {key: report[key] for key in ("fit", "heldout", "uncalibrated", "calibrated", "p_any_relevant")} | {
        "thresholds": report["thresholds"],
        "abstention": {k: v for k, v in report["abstention"].items() if k != "by_threshold"},
        "abstention_by_threshold": [
            {k: row[k] for k in ("threshold", "abstained_on_unanswerable", "answered_answerable")}
            for row in report["abstention"]["by_threshold"]
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index-dir", default=str(ROOT / ".cache" / "scifact-index"))
    parser.add_argument("--max-queries", type=int, default=300)
    args = parser.parse_args()
    index = Path(args.index_dir)
    if (index / "config.json").is_file():
        retriever = FaissRetriever.load(index)
    else:
        corpus = load_corpus(SCIFACT / "corpus.jsonl")
        retriever = FaissRetriever.from_texts(list(corpus.values()), ids=list(corpus))
        retriever.save(index)
    reranker = Reranker(str(TRAINED_MODEL), calibration=None)
    started = time.perf_counter()
    platt = calibrate(
        reranker, SCIFACT, split="train", heldout_split="test", top_k=50, retriever=retriever,
        max_queries=args.max_queries,
    )  # fmt: skip
    seconds = time.perf_counter() - started
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
        "platt": {"parameters": platt.calibration.parameters, **_summary(platt.calibration.report)},
        "isotonic": _summary(isotonic.calibration.report),
        "fit_on_half_of_test": within_test,
    }
    OUTPUT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for name in ("platt", "isotonic"):
        row = result[name]
        print(name, "ECE", row["uncalibrated"]["ece"], "->", row["calibrated"]["ece"], "abstention", row["abstention"])
    print("wrote", OUTPUT, "and", DIAGRAM)


if __name__ == "__main__":
    main()
