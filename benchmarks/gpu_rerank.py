"""GPU reranking benchmark: ``CrossEncoder.predict`` against each mode of our core and the bare model's ceiling.

One process, after warm-up, every ratio against the baseline (``predict`` fp32, batch 32) measured in the
same run. Workload and model come from ``benchmarks/gpu_prepare.py`` (carried to the GPU machine):

    HF_HUB_OFFLINE=1 PYTHONPATH=. python benchmarks/gpu_rerank.py --device cuda          # on the GPU
    HF_HUB_OFFLINE=1 PYTHONPATH=. .venv/bin/python benchmarks/gpu_rerank.py --device cpu --queries 4   # smoke

For each mode: pairs/s, real tokens/s, padding, p50/p95 latency of one 50- and one 100-candidate rerank,
peak device memory, and fidelity against the fp32 baseline (top-10 overlap; NDCG@10 with ir-measures
where it is installed, else ``--report`` computes it from the saved runs on a machine that has it).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

OUR_MODES: dict[str, dict[str, Any]] = {
    "ours fp32, padded": {"precision": "fp32", "unpadded": False},
    "ours fp32, unpadded": {"precision": "fp32", "unpadded": True},
    "ours auto, padded": {"unpadded": False},
    "ours auto (default)": {},
    "ours bf16": {"precision": "bf16"},
}
"""Our core's modes (torch runtime); ``auto`` is fp16 on CUDA, batches by token budget, unpadded on CUDA."""
PREDICT_BATCHES = (32, 64, 128, 256, 512)
CEILING_BATCH = 256


class Clock:
    """Wall time of a block, waiting for the device before and after."""

    def __init__(self, device: str) -> None:
        self.device = device

    def sync(self) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()

    def time(self, run: Callable[[], object]) -> float:
        self.sync()
        started = time.perf_counter()
        run()
        self.sync()
        return time.perf_counter() - started


def _percentiles(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] * 1000


def _latency(clock: Clock, rank_one: Callable[[int, int], object], queries: int, size: int) -> tuple[float, float]:
    rank_one(0, size)  # warm
    return _percentiles([clock.time(lambda i=i: rank_one(i, size)) for i in range(queries)])


def _peak_reset(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_mb(device: str) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None


def _split(flat: list[float], texts: list[list[str]]) -> list[list[float]]:
    out, start = [], 0
    for row in texts:
        out.append(flat[start : start + len(row)])
        start += len(row)
    return out


def _predict_run(
    args: argparse.Namespace,
    workload: dict[str, Any],
    clock: Clock,
    name: str,
    dtype: torch.dtype,
    sizes: tuple[int, ...],
) -> dict[str, Any]:
    """``CrossEncoder.predict`` in ``dtype`` at the best of ``sizes`` (timed on the first 2,000 pairs)."""
    from sentence_transformers import CrossEncoder

    texts, queries = workload["texts"], workload["queries"]
    pairs = [(q, t) for q, row in zip(queries, texts, strict=True) for t in row]
    model = CrossEncoder(args.model, device=args.device, model_kwargs={"dtype": dtype})

    def predict(batch: list[tuple[str, str]], size: int) -> list[float]:
        return list(map(float, model.predict(batch, batch_size=size, show_progress_bar=False)))

    best = sizes[0]
    if len(sizes) > 1:
        trial = pairs[:2000]
        predict(trial[:512], 512)
        speeds = {size: clock.time(lambda size=size: predict(trial, size)) for size in sizes}
        best = min(speeds, key=lambda size: speeds[size])
    predict(pairs[:best], best)
    _peak_reset(args.device)
    scores: list[float] = []
    seconds = clock.time(lambda: scores.extend(predict(pairs, best)))
    latency = {
        size: _latency(
            clock, lambda i, n: predict([(queries[i], t) for t in texts[i][:n]], best), args.latency_queries, size
        )
        for size in (50, 100)
    }
    label = name if len(sizes) == 1 else f"{name} ({best})"
    return {
        "name": label,
        "seconds": seconds,
        "pairs": len(pairs),
        "tokens": None,
        "padding": None,
        "latency": latency,
        "peak_mb": _peak_mb(args.device),
        "scores": _split(scores, texts),
    }


def _predict_modes(args: argparse.Namespace, workload: dict[str, Any], clock: Clock) -> list[dict[str, Any]]:
    results = [_predict_run(args, workload, clock, "predict fp32, batch 32 (baseline)", torch.float32, (32,))]
    if args.device.startswith("cuda"):
        results.append(_predict_run(args, workload, clock, "predict fp16, best batch", torch.float16, PREDICT_BATCHES))
    return results


def _our_run(
    args: argparse.Namespace, workload: dict[str, Any], clock: Clock, name: str, options: dict[str, Any]
) -> dict[str, Any]:
    from rerank_plugins import Reranker

    texts, queries = workload["texts"], workload["queries"]
    reranker = Reranker(args.model, device=args.device, runtime="torch", show_progress_bar=False, **options)
    reranker.rank_many(queries[:2], texts[:2])  # load and warm up
    reranker.reset_stats()
    _peak_reset(args.device)
    rankings: list[Any] = []
    seconds = clock.time(lambda: rankings.extend(reranker.rank_many(queries, texts)))
    stats = reranker.stats
    latency = {
        size: _latency(clock, lambda i, n: reranker.rank(queries[i], texts[i][:n]), args.latency_queries, size)
        for size in (50, 100)
    }
    scores = [[0.0] * len(row) for row in texts]
    for row, ranking in zip(scores, rankings, strict=True):
        for result in ranking:
            row[result.index] = result.score
    label = (
        f"{name}: {reranker.precision}, batch {reranker.batch_size}/{reranker.max_batch_tokens} tokens, "
        f"unpadded={reranker.unpadded}"
    )
    return {
        "name": label,
        "seconds": seconds,
        "pairs": stats.pairs,
        "tokens": stats.tokens,
        "padding": stats.padding_waste,
        "latency": latency,
        "peak_mb": _peak_mb(args.device),
        "scores": scores,
    }


def _our_modes(args: argparse.Namespace, workload: dict[str, Any], clock: Clock) -> list[dict[str, Any]]:
    return [
        _our_run(args, workload, clock, name, options)
        for name, options in OUR_MODES.items()
        if args.device.startswith("cuda") or options.get("precision") != "bf16"
    ]


def _ceiling(args: argparse.Namespace, workload: dict[str, Any], clock: Clock) -> dict[str, Any]:
    """The bare Hugging Face model: pairs tokenised beforehand, sorted by length, batches already on the device."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    dtype = torch.float16 if args.device.startswith("cuda") else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForSequenceClassification.from_pretrained(args.model, dtype=dtype).to(args.device).eval()
    pairs = [(q, t) for q, row in zip(workload["queries"], workload["texts"], strict=True) for t in row]
    encoded = tokenizer([q for q, _ in pairs], [t for _, t in pairs], truncation="only_second", max_length=512)
    order = sorted(range(len(pairs)), key=lambda i: -len(encoded["input_ids"][i]))
    batches, real, padded = [], 0, 0
    for start in range(0, len(order), CEILING_BATCH):
        rows = [{k: encoded[k][i] for k in encoded} for i in order[start : start + CEILING_BATCH]]
        batch = tokenizer.pad(rows, return_tensors="pt")
        real += int(batch["attention_mask"].sum())
        padded += batch["attention_mask"].numel()
        batches.append({k: v.to(args.device) for k, v in batch.items()})

    def run() -> None:
        with torch.inference_mode():
            for batch in batches:
                model(**batch)

    run()
    _peak_reset(args.device)
    seconds = clock.time(run)
    return {
        "name": f"bare HF model {str(dtype).removeprefix('torch.')}, pre-tokenised, sorted, batch "
        f"{CEILING_BATCH} on the device",
        "seconds": seconds,
        "pairs": len(pairs),
        "tokens": real,
        "padding": 1 - real / padded,
        "latency": None,
        "peak_mb": _peak_mb(args.device),
        "scores": None,
    }


def summarise(raw: dict[str, Any]) -> dict[str, Any]:
    """Ratios to the baseline, and fidelity of each mode's scores against the fp32 baseline's."""
    modes = raw["modes"]
    base = modes[0]
    reference = [np.argsort(-np.asarray(row), kind="stable")[:10] for row in base["scores"]]
    try:
        from rerank_plugins.evaluation.metrics import score_run
    except ImportError:  # ir-measures is not on this machine: run --report where it is
        score_run = None
    for mode in modes:
        mode["pairs_per_second"] = mode["pairs"] / mode["seconds"]
        mode["x_baseline"] = base["seconds"] / mode["seconds"] * mode["pairs"] / base["pairs"]
        mode["tokens_per_second"] = None if mode["tokens"] is None else mode["tokens"] / mode["seconds"]
        if mode["scores"] is None:
            continue
        tops = [np.argsort(-np.asarray(row), kind="stable")[:10] for row in mode["scores"]]
        mode["top10_overlap"] = float(
            np.mean([len(set(a) & set(b)) / 10 for a, b in zip(tops, reference, strict=True)])
        )
        if score_run is not None:
            run = {
                q: dict(zip(ids, map(float, row), strict=True))
                for q, ids, row in zip(
                    raw["workload"]["query_ids"], raw["workload"]["doc_ids"], mode["scores"], strict=True
                )
            }
            mode["ndcg_at_10"] = score_run(run, raw["workload"]["qrels"], 10)["ndcg@10"]
    return raw


def table(raw: dict[str, Any]) -> str:
    """The results as a Markdown table, for the README."""
    lines = [
        f"{raw['device_name']}, torch {raw['versions']['torch']}; {raw['modes'][0]['pairs']} pairs.",
        "",
        "| run | pairs/s | x baseline | tokens/s | padding | 50 cand. p50/p95 ms | 100 cand. p50/p95 ms | peak MB "
        "| top-10 overlap | NDCG@10 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def shown(value: Any, form: str) -> str:
        return "" if value is None else form.format(value)

    for mode in raw["modes"]:
        latency = mode["latency"] or {}
        cells = [f"{latency[s][0]:.1f} / {latency[s][1]:.1f}" if s in latency else "" for s in (50, 100)]
        lines.append(
            f"| {mode['name']} | {mode['pairs_per_second']:,.0f} | {mode['x_baseline']:.2f} | "
            f"{shown(mode['tokens_per_second'], '{:,.0f}')} | {shown(mode['padding'], '{:.1%}')} | {cells[0]} | "
            f"{cells[1]} | {shown(mode['peak_mb'], '{:,.0f}')} | {shown(mode.get('top10_overlap'), '{:.3f}')} | "
            f"{shown(mode.get('ndcg_at_10'), '{:.4f}')} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--model", default=".cache/gpu/minilm-l6-scifact-ce-fp16")
    parser.add_argument("--workload", default=".cache/gpu/workload.json")
    parser.add_argument("--queries", type=int, default=100, help="claims of the workload to rerank")
    parser.add_argument("--latency-queries", type=int, default=20, help="single reranks timed per size")
    parser.add_argument("--output", default="benchmarks/results/gpu_rerank.json")
    parser.add_argument("--report", default=None, help="only summarise this saved raw JSON (adds NDCG@10)")
    args = parser.parse_args()

    output = Path(args.output)
    if args.report:
        raw = summarise(json.loads(Path(args.report).read_text(encoding="utf-8")))
    else:
        saved = json.loads(Path(args.workload).read_text(encoding="utf-8"))
        workload = {key: saved[key][: args.queries] for key in ("query_ids", "queries", "doc_ids")}
        workload["texts"] = [[saved["corpus"][doc] for doc in row] for row in workload["doc_ids"]]
        workload["qrels"] = {q: saved["qrels"][q] for q in workload["query_ids"]}
        args.latency_queries = min(args.latency_queries, len(workload["queries"]))
        clock = Clock(args.device)
        import sentence_transformers
        import transformers

        modes = (
            _predict_modes(args, workload, clock)
            + _our_modes(args, workload, clock)
            + [_ceiling(args, workload, clock)]
        )
        raw = summarise(
            {
                "device_name": torch.cuda.get_device_name()
                if args.device.startswith("cuda")
                else platform.processor() or "cpu",
                "versions": {
                    "torch": torch.__version__,
                    "transformers": transformers.__version__,
                    "sentence_transformers": sentence_transformers.__version__,
                },
                "command": f"benchmarks/gpu_rerank.py --device {args.device} --queries {args.queries}",
                "workload": {key: workload[key] for key in ("query_ids", "doc_ids", "qrels")},
                "modes": modes,
            }
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(raw), encoding="utf-8")
    output.with_suffix(".md").write_text(table(raw) + "\n", encoding="utf-8")
    print(table(raw))


if __name__ == "__main__":
    main()
