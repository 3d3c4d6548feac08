"""``rerank-plugins calibrate``: fit the 0-1 relevance on judged BEIR-format data; file, report and diagram out."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from rerank_plugins.calibrating import calibrate, write_reliability_diagram
from rerank_plugins.calibrating.abstention import ANSWER_RATE
from rerank_plugins.calibration import CALIBRATION_FILE, Calibration
from rerank_plugins.cli.commands import COMMANDS
from rerank_plugins.cli.evaluate import build_retriever
from rerank_plugins.cli.options import add_reranker_options, check_ready, reranker_from
from rerank_plugins.evaluation.beir import check_beir_directory, load_corpus
from rerank_plugins.reranker import PROGRESS_MIN_PAIRS

__all__ = ["add_parser", "run"]


def add_parser(commands: Any, name: str) -> None:
    parser = commands.add_parser(
        name,
        help=COMMANDS[name].help,
        description="Score each query's first-stage candidates with the reranker exactly as configured, fit a map "
        "from raw score to P(relevant) on some queries, and measure it on held-out queries: ECE, Brier score, "
        "log-loss, a reliability diagram and a threshold table. Use the file with --calibration (or Reranker("
        f"calibration=FILE)); saved as {CALIBRATION_FILE} in the model's directory it is used by default.",
    )
    parser.add_argument("--data", required=True, help="BEIR directory: corpus.jsonl, queries.jsonl, qrels/")
    parser.add_argument("--out", required=True, help="the calibration file to write (JSON)")
    parser.add_argument("--split", default="test", help="qrels split whose queries are fitted on")
    held = parser.add_mutually_exclusive_group()
    held.add_argument("--heldout", type=float, default=0.3, help="share of --split's queries held out to measure on")
    held.add_argument("--heldout-split", default=None, help="measure on this qrels split's queries instead")
    parser.add_argument(
        "--method", default="platt", choices=["platt", "isotonic"], help="platt: logistic on the raw score"
    )
    parser.add_argument("--min-grade", type=int, default=0, help="a qrels grade above this is relevant")
    parser.add_argument("--top-k", type=int, default=50, help="first-stage candidates per query")
    parser.add_argument("--run", default=None, help="TREC run file of your own first stage (default: FAISS retrieval)")
    parser.add_argument("--heldout-run", default=None, help="TREC run file of the --heldout-split queries, when "
                        "they are not in --run")  # fmt: skip
    parser.add_argument(
        "--unanswerable", nargs="+", default=[], choices=["unjudged", "removed", "swapped"],
        help="where queries with no relevant candidate come from, to fit P(any relevant) and a 'nothing relevant' "
        "rule: unjudged = the run's queries with no qrels row (real unanswerable questions); removed = answerable "
        "queries with their relevant candidates removed; swapped = a query against another query's candidates. "
        "Without it no rule is fitted and P(any relevant) is unknown",
    )  # fmt: skip
    parser.add_argument("--answer-rate", type=float, default=ANSWER_RATE, help="share of answerable queries the "
                        "recommended rule keeps answering (a one-sided 95%% bound on the fitted ones)")  # fmt: skip
    parser.add_argument("--bi-encoder", default=None, help="bi-encoder (default: bundled all-MiniLM-L6-v2)")
    parser.add_argument("--index-dir", default=None, help="save the FAISS index here, or load it if present")
    parser.add_argument(
        "--max-queries", type=int, default=None,
        help="a seeded sample of at most N queries on each side (fit, held-out), not the split's first N",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="seed of the held-out split and samples")
    parser.add_argument("--report", default=None, help="directory for report.json and reliability.png (default: "
                        "beside --out)")  # fmt: skip
    add_reranker_options(parser)


def _errors_table(report: dict[str, Any]) -> Table:
    held = report["heldout"]
    title = f"held-out: {held['queries']} queries, {held['pairs']} pairs, {held['relevant_pairs']} relevant"
    table = Table(title=title)
    for column in ("", "ECE", "Brier", "Brier skill", "log-loss", "ROC AUC"):
        table.add_column(column, justify="right" if column else "left")
    for name, label in (("uncalibrated", "sigmoid(raw score)"), ("calibrated", "calibrated")):
        row = report[name]
        table.add_row(label, f"{row['ece']:.4f}", f"{row['brier']:.4f}", _number(row.get("brier_skill")),
                      f"{row['log_loss']:.4f}", _number(row.get("roc_auc")))  # fmt: skip
    return table


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _thresholds_table(report: dict[str, Any]) -> Table:
    table = Table(title="thresholds on calibrated relevance_score (held-out queries)")
    for column in ("threshold", "precision", "recall", "queries with none", "docs per query"):
        table.add_column(column, justify="right")
    for row in report["thresholds"]:
        table.add_row(f"{row['threshold']:.1f}", _percent(row["precision"]), _percent(row["recall"]),
                      _percent(row["no_document_share"]), f"{row['documents_per_query']:.2f}")  # fmt: skip
    return table


def show(calibration: Calibration, console: Console) -> None:
    """Print a calibration's held-out figures and threshold table."""
    console.print(_errors_table(calibration.report))
    console.print(_thresholds_table(calibration.report))
    for precision in (0.8, 0.9):
        threshold = calibration.threshold_for_precision(precision)
        said = "not reached on the held-out queries" if threshold is None else f"score_threshold={threshold:.2f}"
        console.print(f"precision {precision:.0%}: {said}")
    show_abstention(calibration.report, console)
    for warning in calibration.report.get("warnings", []):
        console.print(f"[bold yellow]warning:[/bold yellow] {warning}")


def show_abstention(report: dict[str, Any], console: Console) -> None:
    """Print P(any relevant)'s held-out figures and the recommended rule, or say plainly that there is none."""
    query_level = report.get("p_any_relevant") or {}
    if not query_level.get("fitted"):
        why = query_level.get("why", "P(any relevant) unknown")
        console.print(f"[bold]no abstention rule was fitted[/bold]: {why}")
        return
    errors = query_level["errors"]
    console.print(
        f"P(at least one relevant) on {query_level['queries']} held-out queries ({query_level['answerable_queries']} "
        f"answerable): ECE {errors['ece']:.4f}, Brier skill {_number(errors['brier_skill'])}, "
        f"ROC AUC {_number(errors['roc_auc'])}"
    )
    rule = query_level.get("rule")
    if rule:
        result = rule["all"]
        console.print(
            f"recommended rule: answer when P(any relevant) >= {rule['answer_from']:.3f} (answers "
            f"{rule['answer_rate']:.0%} of answerable queries by design); held out it abstains on "
            f"{_percent(result['abstained_on_unanswerable'])} of {result['unanswerable_queries']} unanswerable "
            f"queries and answers {_percent(result['answered_answerable'])} of {result['answerable_queries']} "
            f"answerable ones; answer-triggering precision {_percent(result['answer_precision'])}, recall "
            f"{_percent(result['answer_recall'])}, F1 {100 * result['answer_f1']:.1f}. Apply it with abstain=True "
            "(--abstain)"
        )


def run(args: argparse.Namespace) -> int:
    console = Console()
    if args.calibration not in ("auto", "none", "None"):
        raise ValueError("calibrate fits a new calibration: drop --calibration")
    if args.heldout_split is None and not 0.0 < args.heldout < 1.0:
        raise ValueError(f"the held-out share must be between 0 and 1, got {args.heldout}")
    root = check_beir_directory(args.data, args.split, *([args.heldout_split] if args.heldout_split else []))
    check_ready(args, ("eval",) if args.run else ("faiss", "eval"), bi_encoder=args.run is None)
    args.calibration = "none"
    reranker = reranker_from(args)
    retriever = None
    if args.run is None:  # checked first: embedding the corpus is the slow part
        retriever = build_retriever(args, load_corpus(root / "corpus.jsonl"), console)
    console.print(f"Scoring the candidates, then fitting (a bar counts the pairs from {PROGRESS_MIN_PAIRS:,} on)")
    result = calibrate(
        reranker, args.data, split=args.split, heldout=args.heldout, heldout_split=args.heldout_split,
        top_k=args.top_k, retriever=retriever, run=args.run, heldout_run=args.heldout_run, method=args.method,
        min_grade=args.min_grade, max_queries=args.max_queries, seed=args.seed, unanswerable=args.unanswerable,
        answer_rate=args.answer_rate,
    )  # fmt: skip
    calibration = result.calibration
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    calibration.save(out)
    report_dir = Path(args.report) if args.report else out.parent
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "report.json").write_text(json.dumps(calibration.report, indent=2) + "\n", encoding="utf-8")
    diagram = write_reliability_diagram(
        calibration.report, report_dir / "reliability.png", title=f"{Path(args.data).name}: held-out reliability"
    )
    show(calibration, console)
    console.print(f"calibration ({calibration.method}) in {out}; report and diagram in {report_dir}/ ({diagram.name})")
    return 0
