"""How fast the host can feed a device: our scoring path with the model's forward pass replaced by a no-op.

On a GPU the forward passes are fast and the host loop (tokenise, plan, build batches, copy, collect)
sets the pace; this measures that loop alone, on the SciFact workload of ``gpu_prepare.py``, against
the same loop of an earlier commit loaded in the same process (its package renamed), so the ratio is
free of machine noise:

    HF_HUB_OFFLINE=1 PYTHONPATH=. .venv/bin/python benchmarks/host_pipeline.py --against efffdce
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch


def _old_package(ref: str, root: Path) -> Any:
    """``rerank_plugins`` as of ``ref``, importable as ``rerank_plugins_<ref>``."""
    name = f"rerank_plugins_{re.sub(r'[^0-9A-Za-z]', '_', ref)}"
    files = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", ref, "rerank_plugins"], check=True, capture_output=True, text=True
    ).stdout.split()
    for path in files:
        text = subprocess.run(["git", "show", f"{ref}:{path}"], check=True, capture_output=True).stdout
        target = root / name / Path(path).relative_to("rerank_plugins")
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.endswith(".py"):
            text = re.sub(rb"\brerank_plugins\b", name.encode(), text)
        target.write_bytes(text)
    sys.path.insert(0, str(root))
    return importlib.import_module(name)


def _no_forward(package: Any, model: str, **options: Any) -> Any:
    reranker = package.Reranker(
        model, device="cpu", runtime="torch", precision="fp32", show_progress_bar=False, **options
    )
    loaded, _ = reranker._model()

    def forward(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.zeros(inputs["input_ids"].shape[0], loaded.num_labels)

    reranker._loaded = dataclasses.replace(loaded, forward=forward)
    return reranker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", default=None, help="git ref of the core to compare with (same process)")
    parser.add_argument("--model", default=".cache/gpu/minilm-l6-scifact-ce-fp16")
    parser.add_argument("--workload", default=".cache/gpu/workload.json")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default="benchmarks/results/host_pipeline.json")
    args = parser.parse_args()

    import rerank_plugins

    saved = json.loads(Path(args.workload).read_text(encoding="utf-8"))
    queries = saved["queries"]
    texts = [[saved["corpus"][doc] for doc in row] for row in saved["doc_ids"]]
    pairs = sum(map(len, texts))
    with tempfile.TemporaryDirectory() as scratch:
        cores = {"this tree": rerank_plugins}
        if args.against:
            cores[args.against] = _old_package(args.against, Path(scratch))
        rerankers = {
            name: _no_forward(package, args.model, batch_size=args.batch_size) for name, package in cores.items()
        }
        for reranker in rerankers.values():
            reranker.rank_many(queries[:2], texts[:2])
        seconds: dict[str, list[float]] = {name: [] for name in rerankers}
        latency: dict[str, list[float]] = {name: [] for name in rerankers}
        for _ in range(args.repeats):  # interleaved, so both see the same machine
            for name, reranker in rerankers.items():
                started = time.perf_counter()
                reranker.rank_many(queries, texts)
                seconds[name].append(time.perf_counter() - started)
        for position in range(min(20, len(queries))):
            for name, reranker in rerankers.items():
                started = time.perf_counter()
                reranker.rank(queries[position], texts[position][:50])
                latency[name].append((time.perf_counter() - started) * 1000)
    results = {
        name: {
            "pairs_per_second": pairs / min(seconds[name]),
            "rank_50_p50_ms": sorted(latency[name])[len(latency[name]) // 2],
        }
        for name in rerankers
    }
    for name, result in results.items():
        print(
            f"{name}: {result['pairs_per_second']:,.0f} pairs/s host-only, 50-candidate rank p50 "
            f"{result['rank_50_p50_ms']:.1f} ms"
        )
    if args.against:
        ratio = results["this tree"]["pairs_per_second"] / results[args.against]["pairs_per_second"]
        print(f"this tree / {args.against}: {ratio:.2f}x")
    Path(args.output).write_text(
        json.dumps({"pairs": pairs, "batch_size": args.batch_size, "results": results}, indent=2), encoding="utf-8"
    )


if __name__ == "__main__":
    main()
