"""CPU speed benchmark: sentence-transformers' ``CrossEncoder.predict`` (fp32) against our core's modes.

Everything runs in one process after warm-up, and results are reported as ratios to the baseline
measured in the same run, because absolute timings on shared machines are noisy. A runtime that
sentence-transformers also offers as a backend (ONNX Runtime) is measured against that backend too.
"""

from __future__ import annotations

import functools
import logging
import resource
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import torch

from rerank_plugins.evaluation.metrics import score_run
from rerank_plugins.quiet import quiet_loading
from rerank_plugins.reranker import Reranker
from rerank_plugins.results import ScoringStats
from rerank_plugins.runtime.cls_only import supports_cls_only

__all__ = [
    "MODES",
    "SENTENCE_TRANSFORMERS_BACKENDS",
    "ModeResult",
    "SpeedReport",
    "Workload",
    "attention_flops",
    "benchmark",
    "cpu_description",
    "machine_rates",
    "matmul_gflops",
    "reranker_for_mode",
]

logger = logging.getLogger(__name__)

MODES = (
    "auto",
    "torch-fp32",
    "torch-bf16",
    "openvino-fp32",
    "openvino-bf16",
    "openvino-int8",
    "onnx-fp32",
    "onnx-int8",
)
"""``auto`` is the default ``Reranker``; the others name a runtime and a precision."""

SENTENCE_TRANSFORMERS_BACKENDS = {"onnx": "onnx"}
"""Our runtimes that sentence-transformers also runs (``CrossEncoder(backend=...)``): a mode on one of
them is also compared with that backend, measured in the same run."""


@dataclass(frozen=True)
class Workload:
    """Queries, each with its candidate documents (ids and texts), and judgments for fidelity."""

    queries: list[str]
    doc_ids: list[list[str]]
    texts: list[list[str]]
    qrels: dict[str, dict[str, int]]
    query_ids: list[str]

    @property
    def pairs(self) -> int:
        return sum(len(texts) for texts in self.texts)


@dataclass
class ModeResult:
    """One mode's throughput, latency, padding and fidelity."""

    name: str
    pairs_per_second: float
    tokens_per_second: float | None  # None for the baseline: CrossEncoder.predict does not say
    padding_waste: float | None
    latency_p50_ms: float
    latency_p95_ms: float
    speedup: float = 1.0
    latency_ratio: float = 1.0
    top10_overlap: float = 1.0
    ndcg_at_10: float = 0.0
    matmul_fraction: float | None = None
    backend_speedup: float | None = None
    """Throughput over sentence-transformers' own backend of the same runtime (``None``: it has none)."""
    model_gflop: float | None = None
    """The model's FLOPs for the whole workload as run (linear layers and attention, padding included)."""
    useful_gflop: float | None = None
    """The same without the padding tokens: the work the pairs needed."""
    gflops_per_second: float | None = None
    """``model_gflop`` over the seconds spent scoring: the rate the mode achieved."""
    rate_fraction: float | None = None
    """``gflops_per_second`` over this machine's matmul rate in the mode's precision (``None``: not measured)."""

    @property
    def slower_than_baseline(self) -> bool:
        """Whether this mode is slower than ``CrossEncoder.predict`` fp32 on this machine: ``bench`` says so."""
        return self.speedup < 1.0


@dataclass
class SpeedReport:
    """All modes of one run, the machine (CPU name, flags, matmul rates at the model's shapes), peak memory."""

    modes: list[ModeResult]
    matmul_gflops: dict[str, float]
    peak_rss_mb: float
    pairs: int
    settings: dict[str, Any] = field(default_factory=dict)
    cpu: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        result = asdict(self)
        for row, mode in zip(result["modes"], self.modes, strict=True):
            row["slower_than_baseline"] = mode.slower_than_baseline
        return result

    @property
    def slower_than_baseline(self) -> list[str]:
        """The modes slower than ``CrossEncoder.predict`` fp32 here (flagged, never hidden)."""
        return [mode.name for mode in self.modes[1:] if mode.slower_than_baseline]


def matmul_gflops(
    dtype: torch.dtype, rows: int = 8192, inner: int = 384, cols: int = 1536, repeats: int = 10, budget_s: float = 1.0
) -> float:
    """Achieved GFLOP/s of a BERT-shaped matmul (tokens x hidden @ hidden x intermediate) in ``dtype``.

    At most ``repeats`` products, and no more once ``budget_s`` has passed: bf16 on a CPU without native
    bf16 runs one product in seconds, and ten of them made ``bench`` spend most of its time here."""
    left, right = torch.randn(rows, inner).to(dtype), torch.randn(inner, cols).to(dtype)
    left @ right  # warm-up
    done, started = 0, time.perf_counter()
    while done < repeats and (done == 0 or time.perf_counter() - started < budget_s):
        left @ right
        done += 1
    return 2 * rows * inner * cols * done / (time.perf_counter() - started) / 1e9


def machine_rates(hidden: int, intermediate: int, tokens: int = 8192) -> dict[str, float]:
    """This machine's matmul GFLOP/s in fp32 and bf16 at one BERT layer's own shapes (``tokens`` rows: four
    hidden x hidden projections, the feed-forward up and down), FLOP-weighted: the roofline a mode is held to,
    measured in the same run rather than read from a spec sheet."""
    shapes = ((hidden, hidden, 4), (hidden, intermediate, 1), (intermediate, hidden, 1))
    rates = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        flops = seconds = 0.0
        for inner, cols, count in shapes:
            product = 2.0 * tokens * inner * cols * count
            flops += product
            seconds += product / (matmul_gflops(dtype, tokens, inner, cols, repeats=5, budget_s=0.5) * 1e9)
        rates[name] = flops / seconds / 1e9
    return rates


def cpu_description() -> dict[str, Any]:
    """The CPU's name and the flags that decide its bf16 and int8 rates, for every report."""
    from rerank_plugins.cpu import SPEED_FLAGS, cpu_flags, cpu_name

    flags = cpu_flags()
    return {"name": cpu_name(), "flags": [flag for flag in SPEED_FLAGS if flag in flags],
            "amx": "amx_bf16" in flags}  # fmt: skip


def attention_flops(reranker: Reranker, workload: Workload) -> float:
    """FLOPs of attention (scores and weighted sum, ``4 L^2 H`` a layer for a sequence of ``L`` tokens) over the
    workload's pairs as the core tokenises them; the [CLS]-only last layer attends from one token (``4 L H``)."""
    loaded = reranker._model()[0]
    config = loaded.network.config
    hidden, layers = int(config.hidden_size), int(config.num_hidden_layers)
    last = 4 * hidden if supports_cls_only(loaded.network) and not loaded.is_causal else None
    total = 0.0
    for query, texts in zip(workload.queries, workload.texts, strict=True):
        for length in reranker.token_cost(query, texts).pair_tokens:
            full = 4.0 * length * length * hidden
            total += (layers - 1) * full + (last * length if last is not None else full)
    return total


def reranker_for_mode(model: str, mode: str, batch_size: int) -> Reranker:
    """Our core in one benchmark mode, on the CPU."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    runtime, precision = ("auto", "auto") if mode == "auto" else mode.split("-")
    return Reranker(
        model,
        device="cpu",
        precision=cast(Any, precision),
        runtime=cast(Any, runtime),
        batch_size=batch_size,
        show_progress_bar=False,
    )


def _weights(modules: Iterable[Any]) -> int:
    return sum(m.weight.numel() for module in modules for m in module.modules() if isinstance(m, torch.nn.Linear))


def _matmul_flops(reranker: Reranker, stats: ScoringStats) -> float:
    """FLOPs of the linear layers the mode actually ran: every weight costs 2 FLOPs per token it sees.

    With the [CLS]-only last layer, that layer's key and value projections see every token and the
    rest of it (and the head) one token per model input. A causal-LM reranker runs its decoder over
    every token and two rows of its output projection once per input.
    """
    loaded = reranker._model()[0]
    network = loaded.network
    if loaded.is_causal:
        head = 2 * int(network.config.hidden_size)
        return 2.0 * (_weights([network.base_model]) * stats.padded_tokens + head * stats.model_inputs)
    if not supports_cls_only(network):
        return 2.0 * _weights([network]) * stats.padded_tokens
    base = network.base_model
    last = base.encoder.layer[-1]
    key_value = _weights([last.attention.self.key, last.attention.self.value])
    heads = [module for module in (getattr(base, "pooler", None), network.classifier) if module is not None]
    per_input = _weights([last, *heads]) - key_value
    per_token = _weights([network]) - per_input
    return 2.0 * (per_token * stats.padded_tokens + per_input * stats.model_inputs)


def _latencies(run_one: Callable[[int], object], count: int) -> tuple[float, float]:
    times = []
    for position in range(count):
        started = time.perf_counter()
        run_one(position)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]


def _rank_one(reranker: Reranker, workload: Workload, position: int) -> object:
    return reranker.rank(workload.queries[position], workload.texts[position])


def _top10_overlap(rankings: Sequence[Sequence[int]], reference: Sequence[Sequence[int]]) -> float:
    overlaps = [
        len(set(a[:10]) & set(b[:10])) / max(1, min(10, len(b))) for a, b in zip(rankings, reference, strict=True)
    ]
    return sum(overlaps) / len(overlaps)


def _predict_run(
    encoder: Any, workload: Workload, pairs: list[tuple[str, str]], batch_size: int, latency_count: int
) -> tuple[float, dict[str, dict[str, float]], float, float]:
    """Seconds for all ``pairs``, the run of scores, and p50/p95 latency of ``encoder.predict`` after warm-up."""
    encoder.predict(pairs[:batch_size], batch_size=batch_size, show_progress_bar=False)
    started = time.perf_counter()
    scores = encoder.predict(pairs, batch_size=batch_size, show_progress_bar=False)
    seconds = time.perf_counter() - started
    offsets = [0]
    for texts in workload.texts:
        offsets.append(offsets[-1] + len(texts))
    run = {
        qid: dict(zip(ids, map(float, scores[offsets[i] : offsets[i + 1]]), strict=True))
        for i, (qid, ids) in enumerate(zip(workload.query_ids, workload.doc_ids, strict=True))
    }
    p50, p95 = _latencies(
        lambda i: encoder.predict(
            [(workload.queries[i], t) for t in workload.texts[i]], batch_size=batch_size, show_progress_bar=False
        ),
        latency_count,
    )
    return seconds, run, p50, p95


def _run_order(run: dict[str, dict[str, float]], workload: Workload) -> list[list[int]]:
    """Each query's candidate positions, best score first."""
    return [
        sorted(range(len(ids)), key=lambda index: -run[qid][ids[index]])
        for qid, ids in zip(workload.query_ids, workload.doc_ids, strict=True)
    ]


def benchmark(
    workload: Workload,
    model: str,
    modes: Sequence[str] = ("torch-fp32", "auto"),
    batch_size: int = 32,
    latency_queries: int = 10,
) -> SpeedReport:
    """Measure the baseline, sentence-transformers' backends of the runtimes in ``modes``, and each mode of our
    core on ``workload``."""
    from sentence_transformers import CrossEncoder

    pairs = [(q, t) for q, texts in zip(workload.queries, workload.texts, strict=True) for t in texts]
    latency_count = min(latency_queries, len(workload.queries))

    with quiet_loading(model):
        baseline_encoder = CrossEncoder(model, device="cpu")
    baseline_seconds, baseline_run, base_p50, base_p95 = _predict_run(
        baseline_encoder, workload, pairs, batch_size, latency_count
    )
    baseline_order = _run_order(baseline_run, workload)
    config = baseline_encoder.model.config
    peaks = machine_rates(int(config.hidden_size), int(getattr(config, "intermediate_size", 4 * config.hidden_size)))
    baseline = ModeResult(
        "sentence-transformers predict fp32", len(pairs) / baseline_seconds, None, None, base_p50, base_p95
    )
    baseline.ndcg_at_10 = score_run(baseline_run, workload.qrels, 10)["ndcg@10"]
    results = [baseline]
    backend_seconds: dict[str, float] = {}
    for runtime in dict.fromkeys(mode.split("-")[0] for mode in modes):
        backend = SENTENCE_TRANSFORMERS_BACKENDS.get(runtime)
        if backend is None:
            continue
        try:
            with quiet_loading(model):
                encoder = CrossEncoder(model, device="cpu", backend=backend)
        except Exception as error:  # an ImportError, or optimum refusing this transformers version
            logger.warning("sentence-transformers' %s backend did not load, so it is not measured: %s", backend, error)
            continue
        seconds, run, p50, p95 = _predict_run(encoder, workload, pairs, batch_size, latency_count)
        backend_seconds[runtime] = seconds
        results.append(
            ModeResult(
                name=f"sentence-transformers predict {backend} fp32",
                pairs_per_second=len(pairs) / seconds,
                tokens_per_second=None,
                padding_waste=None,
                latency_p50_ms=p50,
                latency_p95_ms=p95,
                speedup=baseline_seconds / seconds,
                latency_ratio=p50 / base_p50,
                top10_overlap=_top10_overlap(_run_order(run, workload), baseline_order),
                ndcg_at_10=score_run(run, workload.qrels, 10)["ndcg@10"],
            )
        )
    reference: list[list[int]] | None = None
    for mode in modes:
        reranker = reranker_for_mode(model, mode, batch_size)
        reranker.rank_many(workload.queries[:1], [workload.texts[0][:batch_size]])
        reranker.reset_stats()
        started = time.perf_counter()
        rankings = reranker.rank_many(workload.queries, workload.texts)
        seconds = time.perf_counter() - started
        stats = reranker.stats
        p50, p95 = _latencies(functools.partial(_rank_one, reranker, workload), latency_count)
        order = [[r.index for r in ranking] for ranking in rankings]
        reference = reference or order
        run = {
            qid: {ids[r.index]: r.score for r in ranking}
            for qid, ids, ranking in zip(workload.query_ids, workload.doc_ids, rankings, strict=True)
        }
        tokens_per_second = stats.tokens / seconds
        peak = peaks["fp32" if reranker.precision == "fp32" else "bf16"]
        linear = _matmul_flops(reranker, stats)
        attention = attention_flops(reranker, workload)
        model_flops = linear + attention
        useful_flops = linear * stats.tokens / max(1, stats.padded_tokens) + attention
        rate = model_flops / stats.seconds / 1e9
        own_peak = peaks.get(reranker.precision)  # int8 has no rate measured here
        results.append(
            ModeResult(
                name=f"rerank-plugins {mode} ({reranker.runtime} {reranker.precision})",
                pairs_per_second=len(pairs) / seconds,
                tokens_per_second=tokens_per_second,
                padding_waste=stats.padding_waste,
                latency_p50_ms=p50,
                latency_p95_ms=p95,
                speedup=baseline_seconds / seconds,
                latency_ratio=p50 / base_p50,
                top10_overlap=_top10_overlap(order, reference),
                ndcg_at_10=score_run(run, workload.qrels, 10)["ndcg@10"],
                matmul_fraction=linear / stats.seconds / 1e9 / peak,
                backend_speedup=backend_seconds[reranker.runtime] / seconds
                if reranker.runtime in backend_seconds
                else None,
                model_gflop=model_flops / 1e9,
                useful_gflop=useful_flops / 1e9,
                gflops_per_second=rate,
                rate_fraction=rate / own_peak if own_peak else None,
            )
        )
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = SpeedReport(results, peaks, peak_rss_mb, len(pairs), {"model": model, "batch_size": batch_size},
                         cpu_description())  # fmt: skip
    for name in report.slower_than_baseline:
        logger.warning("%s is slower than CrossEncoder.predict fp32 on this machine (%s)", name, report.cpu["name"])
    return report
