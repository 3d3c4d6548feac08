"""``rerank-plugins bench``: our core against sentence-transformers on real SciFact candidates, one process."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from rerank_plugins.cli.commands import COMMANDS
from rerank_plugins.cli.evaluate import build_retriever
from rerank_plugins.cpu import SPEED_FLAGS
from rerank_plugins.evaluation import load_beir
from rerank_plugins.evaluation.speed import MODES, SpeedReport, Workload, benchmark

__all__ = ["add_parser", "run"]


def add_parser(commands: Any, name: str) -> None:
    parser = commands.add_parser(name, help=COMMANDS[name].help)
    parser.add_argument("--data", required=True, help="BEIR directory (queries with judged candidates)")
    parser.add_argument("--model", required=True, help="cross-encoder: Hugging Face id or local directory")
    parser.add_argument(
        "--max-queries", "--queries", dest="queries", metavar="N", type=int, default=20,
        help="rerank the first N queries of the split, as eval does (--queries is the old name)",
    )  # fmt: skip
    parser.add_argument("--candidates", type=int, default=100, help="bi-encoder candidates per query")
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["torch-fp32", "auto"],
        choices=MODES,
        help="modes of our core to measure: auto (the default Reranker) or runtime-precision "
        "(default: torch-fp32 auto); an onnx mode is also compared with sentence-transformers' own ONNX backend "
        "(needs optimum-onnx)",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="pairs per forward pass, in every mode")
    parser.add_argument("--bi-encoder", default=None, help="bi-encoder (default: bundled all-MiniLM-L6-v2)")
    parser.add_argument("--index-dir", default=None, help="save the FAISS index here, or load it if present")
    parser.add_argument("--output", default="bench-report", help="directory for bench.json")


def _shown(value: float | None, form: str) -> str:
    """A measured value in ``form``; blank where the mode does not measure it (the baseline)."""
    return "" if value is None else form.format(value)


def _table(report: SpeedReport) -> Table:
    table = Table(title=f"{report.pairs} (query, document) pairs, batch {report.settings['batch_size']}")
    for column in (
        "mode",
        "pairs/s",
        "x base",
        "tokens/s",
        "padding",
        "p50 ms",
        "p95 ms",
        "p50 ratio",
        "top-10 overlap",
        "NDCG@10",
        "matmul peak",
        "GFLOP/s",
        "of rate",
        "x ST backend",
    ):
        table.add_column(column, justify="left" if column == "mode" else "right")
    for mode in report.modes:
        table.add_row(
            f"{mode.name} [bold red](slower than the baseline)[/bold red]" if mode.slower_than_baseline else mode.name,
            f"{mode.pairs_per_second:.1f}",
            f"{mode.speedup:.2f}",
            _shown(mode.tokens_per_second, "{:.0f}"),
            _shown(mode.padding_waste, "{:.1%}"),
            f"{mode.latency_p50_ms:.0f}",
            f"{mode.latency_p95_ms:.0f}",
            f"{mode.latency_ratio:.2f}",
            f"{mode.top10_overlap:.3f}",
            f"{mode.ndcg_at_10:.4f}",
            _shown(mode.matmul_fraction, "{:.0%}"),
            _shown(mode.gflops_per_second, "{:.0f}"),
            _shown(mode.rate_fraction, "{:.0%}"),
            _shown(mode.backend_speedup, "{:.2f}"),
        )
    return table


def run(args: argparse.Namespace) -> int:
    console = Console(width=max(Console().width, 215))  # fourteen columns
    data = load_beir(args.data, "test")
    query_ids = list(data.queries)[: args.queries]
    retriever = build_retriever(args, data.corpus, console)
    hits = retriever.search_many([data.queries[q] for q in query_ids], k=args.candidates)
    workload = Workload(
        queries=[data.queries[q] for q in query_ids],
        doc_ids=[[h.id for h in row] for row in hits],
        texts=[[h.text for h in row] for row in hits],
        qrels={q: data.qrels[q] for q in query_ids},
        query_ids=query_ids,
    )
    with console.status(f"Benchmarking {workload.pairs} pairs…"):
        report = benchmark(workload, args.model, modes=args.modes, batch_size=args.batch_size)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "bench.json").write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    plot = write_roofline(report, output / "roofline.png")
    console.print(_table(report))
    cpu = report.cpu
    console.print(
        f"CPU: {cpu['name']} ({', '.join(cpu['flags']) or 'none of ' + '/'.join(SPEED_FLAGS)}"
        f"{'' if cpu['amx'] else '; no AMX'}); "
        f"matmul at the model's shapes: fp32 {report.matmul_gflops['fp32']:.0f} GFLOP/s, "
        f"bf16 {report.matmul_gflops['bf16']:.0f} GFLOP/s; peak RSS {report.peak_rss_mb:.0f} MB; "
        f"report in {output}/bench.json, roofline in {plot.name}"
    )
    for name in report.slower_than_baseline:
        console.print(f"[bold red]{name} is slower than CrossEncoder.predict fp32 on this CPU[/bold red]")
    return 0


def write_roofline(report: SpeedReport, path: Path) -> Path:
    """Each mode's achieved GFLOP/s against this machine's fp32 and bf16 matmul rates, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = [mode for mode in report.modes if mode.gflops_per_second is not None]
    figure, axis = plt.subplots(figsize=(7, 3.8))
    axis.barh([m.name.replace("rerank-plugins ", "") for m in modes], [float(m.gflops_per_second or 0) for m in modes])
    for precision, style in (("fp32", ":"), ("bf16", "--")):
        rate = report.matmul_gflops[precision]
        axis.axvline(rate, color="black", ls=style, lw=1)
        axis.text(rate, len(modes) - 0.5, f" {precision} matmul {rate:.0f}", fontsize=8, va="top")
    axis.set_xlabel("model GFLOP/s achieved (linear layers and attention, padding included)")
    axis.set_title(f"{report.cpu.get('name', 'CPU')}: each mode against this machine's matmul rate", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
