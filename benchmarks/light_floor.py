"""The light floor against the full install, measured in one run on this machine.

Builds two venvs from the committed tree: light = ``[langchain,onnx]`` (no torch) and full =
``[torch,langchain,onnx]`` (CPU torch 2.13.0), then measures in each, in fresh processes (median of
``--repeats``): the installed size of site-packages, ``import rerank_plugins.langchain``, import + load of the
exported int8 SciFact model + the first 50-document rank, and ``rerank-plugins --help``. The full install also
loads the PyTorch checkpoint for the same rank (the baseline). The exported artefacts' scores are compared
with the source model's on SciFact test claims over their bi-encoder top 50.

    .venv/bin/python benchmarks/light_floor.py --artefacts .cache/light-artefacts --output benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RERANK_PLUGINS_SHARED", REPO.parent / "shared"))
MODEL = SHARED / "models" / "minilm-l6-scifact-ce"
SCIFACT = SHARED / "data" / "scifact"
INSTALLS = {"light": "langchain,onnx", "full": "torch,langchain,onnx"}


def _venv(folder: Path, extras: str, source: Path) -> Path:
    python = folder / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet"]
        if "torch" in extras:
            subprocess.run([*pip, "torch==2.13.0"], check=True)  # the CPU build on this disk
        subprocess.run([*pip, f"{source}[{extras}]"], check=True)
    return python


def _site_packages_mb(python: Path) -> float:
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    total = sum(path.stat().st_size for path in Path(purelib).rglob("*") if path.is_file() and not path.is_symlink())
    return total / 1e6


def _cold(command: list[str], repeats: int, cwd: Path) -> float:
    """Median wall seconds of ``command`` in a fresh process, run from ``cwd`` (not the source tree)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=cwd, env=env)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _sample(count: int = 50) -> tuple[str, list[str]]:
    rows = [json.loads(line) for line in open(SCIFACT / "corpus.jsonl", encoding="utf-8")][:count]
    return "Vitamin D deficiency is associated with a higher risk of fractures.", [
        f"{row['title']} {row['text']}" for row in rows
    ]


def _rank_code(model: str) -> str:
    query, documents = _sample()
    return (
        "from rerank_plugins import Reranker\n"
        f"r = Reranker({model!r}, calibration=None)\n"
        f"r.rank({query!r}, {documents!r})\n"
    )


def _fidelity(artefacts: Path, queries: int) -> dict[str, dict[str, float]]:
    """Each artefact's logits against the source's (torch fp32) on SciFact test claims' bi-encoder top 50."""
    sys.path.insert(0, str(REPO))
    from rerank_plugins import Reranker
    from rerank_plugins.evaluation import load_beir
    from rerank_plugins.retrieval import FaissRetriever

    data = load_beir(SCIFACT, split="test")
    retriever = FaissRetriever.load(REPO / ".cache" / "scifact-index")
    ids = sorted(data.queries, key=int)[:queries]
    candidates = {q: [hit.text for hit in retriever.search(data.queries[q], k=50)] for q in ids}

    def margins(reranker: Reranker, query_id: str) -> np.ndarray:
        pairs = [(data.queries[query_id], text) for text in candidates[query_id]]
        return np.array([pair.margin for pair in reranker._score_pairs(pairs)], dtype=np.float64)

    source = Reranker(str(MODEL), runtime="torch", precision="fp32", device="cpu", calibration=None)
    reference = {q: margins(source, q) for q in ids}
    result = {}
    for folder in sorted(path for path in artefacts.iterdir() if path.is_dir()):
        exported = Reranker(str(folder), calibration=None)
        got = {q: margins(exported, q) for q in ids}
        overlap = [
            len(set(np.argsort(-reference[q])[:10]) & set(np.argsort(-got[q])[:10])) / 10 for q in ids
        ]
        result[folder.name] = {
            "max_abs_logit_difference": float(max(np.max(np.abs(reference[q] - got[q])) for q in ids)),
            "top10_overlap": float(np.mean(overlap)),
            "min_top10_overlap": float(np.min(overlap)),
            "graph_mb": sum(p.stat().st_size for p in folder.iterdir() if p.suffix in (".onnx", ".bin")) / 1e6,
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--artefacts", type=Path, required=True, help="folder of exported artefacts (onnx-int8 …)")
    parser.add_argument("--venvs", type=Path, default=REPO / ".cache" / "light-floor-venvs")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--queries", type=int, default=30, help="SciFact test claims for the fidelity check")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from rerank_plugins.evaluation.speed import cpu_description

    source = Path(tempfile.mkdtemp(prefix="light-floor-src-"))
    subprocess.run(f"git archive HEAD | tar -x -C {source}", shell=True, check=True, cwd=REPO)
    away = Path(tempfile.mkdtemp(prefix="light-floor-cwd-"))  # so the source tree is never imported instead
    int8 = str((args.artefacts / "onnx-int8").resolve())
    installs = {}
    for name, extras in INSTALLS.items():
        python = _venv(args.venvs / name, extras, source)
        script = python.parent / "rerank-plugins"
        row = {
            "extras": extras,
            "site_packages_mb": _site_packages_mb(python),
            "import_langchain_s": _cold([str(python), "-c", "import rerank_plugins.langchain"], args.repeats, away),
            "import_load_int8_rank50_s": _cold([str(python), "-c", _rank_code(int8)], args.repeats, away),
            "help_s": _cold([str(script), "--help"], args.repeats, away),
        }
        if name == "full":
            row["import_load_torch_checkpoint_rank50_s"] = _cold(
                [str(python), "-c", _rank_code(str(MODEL))], args.repeats, away
            )
        installs[name] = row
        print(name, json.dumps(row), flush=True)
    report = {"cpu": cpu_description(), "installs": installs, "fidelity": _fidelity(args.artefacts, args.queries)}
    print(json.dumps(report, indent=2))
    if args.output is not None:
        args.output.mkdir(parents=True, exist_ok=True)
        (args.output / "light_floor.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
