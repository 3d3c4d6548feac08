""""Nothing relevant" on real unanswerable questions: WikiQA, calibrated on train, measured on test.

For each model (the shared SciFact model unchanged, and the same model fine-tuned on 500 WikiQA train
questions with ``rerank-plugins train``; ``calibrate`` leaves those out and fits on the other train questions),
the same steps as

    rerank-plugins calibrate --data ../shared/data/wikiqa --model MODEL --split train --heldout-split test \\
        --run ../shared/data/wikiqa/runs/train.run --heldout-run ../shared/data/wikiqa/runs/test.run \\
        --unanswerable unjudged --top-k 100 --out runs/wikiqa-calibration.json

(the default ``Reranker``; every candidate of every question scored once), then on the test questions:
MAP and MRR over the answerable ones (WikiQA's answer-selection protocol), the recommended rule's
answer-triggering precision, recall and F1, abstention on the unanswerable ones against answers on the
answerable ones, ECE and Brier skill; and on off-topic questions (SciFact's test claims, each against one
WikiQA test question's candidates), the share the rule abstains on. Writes
``results/wikiqa_abstention.json`` and ``docs/wikiqa-abstention.png``.

    rerank-plugins train --data ../shared/data/wikiqa --base ../shared/models/minilm-l6-scifact-ce \\
        --out runs/wikiqa-ce --index-dir .cache/wikiqa-index --max-train-queries 500
    HF_HUB_OFFLINE=1 PYTHONPATH=. .venv/bin/python benchmarks/wikiqa_abstention.py --fine-tuned runs/wikiqa-ce
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import ir_measures
import numpy as np

from rerank_plugins import Reranker
from rerank_plugins.calibrating import CalibrationRun, LabelledScores, calibrate
from rerank_plugins.cpu import cpu_name
from rerank_plugins.evaluation.beir import load_corpus, load_qrels, load_queries

ROOT = Path(__file__).resolve().parents[1]
WIKIQA = ROOT.parent / "shared" / "data" / "wikiqa"
SCIFACT = ROOT.parent / "shared" / "data" / "scifact"
SHARED_MODEL = ROOT.parent / "shared" / "models" / "minilm-l6-scifact-ce"
OUTPUT = Path(__file__).parent / "results" / "wikiqa_abstention.json"
PLOT = ROOT / "docs" / "wikiqa-abstention.png"


def _answer_selection(rows: LabelledScores) -> dict[str, float]:
    """MAP and MRR of the reranked candidates over the questions with an answer among them."""
    answerable = set(rows.queries[rows.labels == 1].tolist())
    run = {}
    for query, positions in rows.groups():
        if query in answerable:
            run[query] = {str(rows.documents[p]): float(rows.margins[p]) for p in positions}
    qrels = {q: {str(rows.documents[p]): 1 for p in positions if rows.labels[p]} for q, positions in rows.groups()
             if q in answerable}  # fmt: skip
    values = ir_measures.calc_aggregate([ir_measures.AP, ir_measures.RR], qrels, run)
    return {"map": float(values[ir_measures.AP]), "mrr": float(values[ir_measures.RR]), "questions": len(run)}


def _page_order(rows: LabelledScores, run_file: Path) -> dict[str, float]:
    """MAP and MRR of the candidates in the page's own order (the first stage), for reference."""
    order = {(r.query_id, r.doc_id): r.score for r in ir_measures.read_trec_run(str(run_file))}
    margins = np.array([order[(str(q), str(d))] for q, d in zip(rows.queries, rows.documents, strict=True)])
    return _answer_selection(LabelledScores(rows.queries, rows.documents, margins, rows.labels))


def _off_topic(reranker: Reranker, run: CalibrationRun, candidates: dict[str, list[str]], limit: int) -> dict[str, Any]:
    """SciFact test claims, each against one WikiQA test question's candidates: how often the rule abstains."""
    corpus = load_corpus(WIKIQA / "corpus.jsonl")
    claims = load_queries(SCIFACT / "queries.jsonl")
    claim_ids = sorted(load_qrels(SCIFACT / "qrels" / "test.tsv"))[:limit]
    questions = sorted(candidates)
    rankings = reranker.rank_many([claims[c] for c in claim_ids],
                                  [[corpus[d] for d in candidates[questions[i % len(questions)]]]
                                   for i in range(len(claim_ids))])  # fmt: skip
    calibration = run.calibration
    p_any = np.array([calibration.p_any([r.score for r in ranking]) for ranking in rankings], dtype=float)
    level = calibration.answer_from
    return {
        "queries": len(claim_ids),
        "abstained": float(np.mean(p_any < level)) if level is not None else None,
        "median_p_any": float(np.median(p_any)),
    }


def _measure(name: str, model: str, args: argparse.Namespace) -> tuple[dict[str, Any], CalibrationRun]:
    reranker = Reranker(model, calibration=None)
    started = time.perf_counter()
    run = calibrate(
        reranker, WIKIQA, split="train", heldout_split="test", run=WIKIQA / "runs" / "train.run",
        heldout_run=WIKIQA / "runs" / "test.run", unanswerable=["unjudged"], top_k=100,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    report = run.calibration.report
    query_level = report["p_any_relevant"]
    reranker_with = Reranker(model, calibration=run.calibration.save(Path(args.work) / f"{name}-calibration.json"))
    test_candidates: dict[str, list[str]] = {}
    for query, document in zip(run.heldout.queries.tolist(), run.heldout.documents.tolist(), strict=True):
        test_candidates.setdefault(query, []).append(document)
    print(f"{name}: scored in {seconds:.0f} s; rule {run.calibration.abstention}", flush=True)
    return {
        "model": Path(model).name,
        "reranker": repr(reranker),
        "score_seconds": seconds,
        "fit": {k: report["fit"][k] for k in ("queries", "answerable_queries", "pairs", "relevant_pairs")},
        "heldout": report["heldout"],
        "answer_selection": _answer_selection(run.heldout),
        "pairs": {"uncalibrated": report["uncalibrated"], "calibrated": report["calibrated"]},
        "p_any": query_level["errors"],
        "rule": query_level["rule"],
        "by_level": query_level["by_level"],
        "always_answer": query_level["always_answer"],
        "warnings": report["warnings"],
        "off_topic": _off_topic(reranker_with, run, test_candidates, args.off_topic),
    }, run


def _plot(results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4.5))
    for key, label in (("unchanged", "SciFact model, unchanged"), ("fine_tuned", "fine-tuned on WikiQA train")):
        if key not in results:
            continue
        rows = results[key]["by_level"]
        axis.plot([r["answered_answerable"] for r in rows], [r["abstained_on_unanswerable"] for r in rows],
                  marker=".", label=label)  # fmt: skip
        rule = results[key]["rule"]["all"]
        axis.scatter([rule["answered_answerable"]], [rule["abstained_on_unanswerable"]], s=80, zorder=3)
    axis.axvline(0.9, color="grey", lw=0.8, ls="--")
    axis.axhline(0.7, color="grey", lw=0.8, ls="--")
    axis.set_xlabel("answerable test questions answered")
    axis.set_ylabel("unanswerable test questions abstained on")
    axis.set_title("WikiQA test: P(any relevant) levels 0.1-0.9; dot: the recommended rule", fontsize=9)
    axis.legend(loc="lower left")
    figure.tight_layout()
    PLOT.parent.mkdir(exist_ok=True)
    figure.savefig(PLOT, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fine-tuned", default=str(ROOT / "runs" / "wikiqa-ce"), help="model from 'train'")
    parser.add_argument("--off-topic", type=int, default=300, help="SciFact claims used as off-topic questions")
    parser.add_argument("--work", default=str(ROOT / "runs"), help="where the calibrations are written")
    args = parser.parse_args()
    Path(args.work).mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"cpu": cpu_name()}
    runs = {}
    for key, model in (("unchanged", str(SHARED_MODEL)), ("fine_tuned", args.fine_tuned)):
        if not Path(model).is_dir():
            print(f"skipped {key}: no model at {model} (run 'rerank-plugins train' first, see the docstring)")
            continue
        results[key], runs[key] = _measure(key, model, args)
    results["page_order"] = _page_order(runs["unchanged"].heldout, WIKIQA / "runs" / "test.run")
    OUTPUT.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    _plot(results)
    for key in ("unchanged", "fine_tuned"):
        if key not in results:
            continue
        row = results[key]
        print(key, row["answer_selection"], row["rule"]["all"], row["p_any"], row["off_topic"])
    print("wrote", OUTPUT, "and", PLOT)


if __name__ == "__main__":
    main()
