"""Speed of every model family: our core against ``CrossEncoder.predict`` (fp32), in one process.

No weights of these families can be downloaded here, and speed does not depend on them, so each
model is built with random weights at the real model's shape (layers, width, heads, feed-forward,
positions) by ``tests/model_families.py``, with a small trained tokenizer (the vocabulary only sizes
the embedding lookup). Every mode scores the same SciFact (claim, abstract) pairs with the same batch
size and ``max_length``; ratios are to the baseline measured in the same run. Ranking fidelity of low
precision needs trained weights (random ones score near-ties), so it is measured by the tests and by
``rerank-plugins bench`` on the SciFact model, not here; the fp32 difference to ``predict`` is here.

    HF_HUB_OFFLINE=1 PYTHONPATH=. .venv/bin/python benchmarks/families.py   # -> results/families.json
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sentence_transformers import CrossEncoder

from rerank_plugins import Reranker
from tests.model_families import deberta_v3, electra, modernbert, qwen3_reranker, xlm_roberta
from tests.paths import SCIFACT, build_random_cross_encoder

MAX_LENGTH = 256
BATCH = 16
MODES = (("torch", "fp32"), ("torch", "bf16"), ("openvino", "bf16"))

SHAPES: dict[str, tuple[str, Callable[[Path], Path], int]] = {
    "bert": ("cross-encoder/ms-marco-MiniLM-L6-v2", build_random_cross_encoder, 256),
    "xlm-roberta": ("BAAI/bge-reranker-base", lambda t: xlm_roberta(t, 12, 12, 768), 64),
    "electra": ("cross-encoder/ms-marco-electra-base", lambda t: electra(t, 12, 12, 768, embedding_size=768), 64),
    "deberta-v2": ("mixedbread-ai/mxbai-rerank-base-v1", lambda t: deberta_v3(t, 12, 12, 768), 64),
    "modernbert": ("Alibaba-NLP/gte-reranker-modernbert-base", lambda t: modernbert(t, 22, 12, 768), 64),
    "qwen3": ("Qwen/Qwen3-Reranker-0.6B", lambda t: qwen3_reranker(t, 28, 16, 1024), 16),
}
"""Family -> (the real model whose shape is built, builder, pairs scored)."""


def _pairs(count: int) -> tuple[list[str], list[list[str]]]:
    """``count`` pairs as 8 SciFact claims, each with its share of abstracts."""
    claims = [json.loads(line)["text"] for line in (SCIFACT / "queries.jsonl").open(encoding="utf-8")][:8]
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as lines:
        abstracts = [f"{row['title']} {row['text']}" for row in map(json.loads, lines)][:count]
    share = count // len(claims)
    return claims, [abstracts[i * share : (i + 1) * share] for i in range(len(claims))]


def _timed(run: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


def measure(family: str, path: str, count: int) -> dict[str, Any]:
    claims, texts = _pairs(count)
    pairs = [(claim, text) for claim, row in zip(claims, texts, strict=True) for text in row]
    baseline = CrossEncoder(path, device="cpu", max_length=MAX_LENGTH)
    baseline.predict(pairs[:BATCH], batch_size=BATCH, show_progress_bar=False)
    started = time.perf_counter()
    expected = np.asarray(baseline.predict(pairs, batch_size=BATCH, show_progress_bar=False))
    seconds = time.perf_counter() - started
    del baseline
    gc.collect()
    rows: dict[str, Any] = {"predict fp32": {"pairs_per_second": len(pairs) / seconds, "ratio": 1.0}}
    for runtime, precision in MODES:
        reranker = Reranker(
            path,
            device="cpu",
            runtime=runtime,
            precision=precision,
            max_length=MAX_LENGTH,
            batch_size=BATCH,  # type: ignore[arg-type]
        )
        export, _ = _timed(reranker.load)
        reranker.score(claims[0], texts[0][:BATCH])  # warm-up (OpenVINO compiles shapes lazily)
        spent, scores = _timed(
            lambda r=reranker: np.concatenate([r.score(c, t) for c, t in zip(claims, texts, strict=True)])
        )
        rows[f"{runtime} {precision}"] = {
            "pairs_per_second": len(pairs) / spent,
            "ratio": seconds / spent,
            "max_abs_diff": float(np.abs(scores - expected).max()),
            "load_seconds": export,
        }
        del reranker
        gc.collect()
    return {"family": family, "shape_of": SHAPES[family][0], "pairs": len(pairs), "modes": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--output", default="benchmarks/results/families.json")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="families-") as root:
        for family in args.families:
            _, build, count = SHAPES[family]
            path = str(build(Path(root) / family))
            results.append(measure(family, path, count))
            row = results[-1]
            print(
                f"{family:12} ({row['shape_of']}, {row['pairs']} pairs): "
                + ", ".join(
                    f"{mode} {m['pairs_per_second']:.1f}/s x{m['ratio']:.2f}" for mode, m in row["modes"].items()
                )
            )
    settings = {"max_length": MAX_LENGTH, "batch_size": BATCH, "weights": "random, real shapes"}
    Path(args.output).write_text(json.dumps({"settings": settings, "results": results}, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
