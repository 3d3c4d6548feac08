"""``rerank-plugins export``: a PyTorch cross-encoder written out as a self-contained ONNX or OpenVINO artefact.

The artefact scores with ONNX Runtime or OpenVINO and the tokenizer's files alone, so a service or a
serverless function can install the light floor (no torch). Its manifest records the source weights'
digest (so a calibration of the source applies) and how closely its scores follow the source's.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from rerank_plugins.artefact import MANIFEST_FILE, Manifest
from rerank_plugins.calibration import CALIBRATION_FILE
from rerank_plugins.calibration.identity import weights_digest
from rerank_plugins.loading import activation_name, check_cross_encoder_reference, load_cross_encoder, max_lengths
from rerank_plugins.quiet import quiet_loading
from rerank_plugins.reranker import Reranker
from rerank_plugins.runtime.table import RUNTIME_TABLE

__all__ = ["EXPORT_RUNTIMES", "compare_scores", "export_model"]

logger = logging.getLogger(__name__)

EXPORT_RUNTIMES = tuple(name for name, engine in RUNTIME_TABLE.items() if engine.graph_file is not None)
"""The runtimes an artefact can be exported for: those that run a graph file."""
CHECK_DOCUMENTS = 50
"""Documents of the bundled sample each check query is scored against."""


def _sample() -> tuple[list[str], list[str]]:
    """The bundled demo queries and the first ``CHECK_DOCUMENTS`` documents of its corpus: the check's sample."""
    data = resources.files("rerank_plugins.data")
    queries = [line for line in data.joinpath("demo_queries.txt").read_text().splitlines() if line.strip()]
    rows = data.joinpath("demo_corpus.jsonl").read_text().splitlines()[:CHECK_DOCUMENTS]
    documents = [f"{row.get('title', '')}. {row['text']}".strip(". ") for row in map(json.loads, rows)]
    return queries, documents


def compare_scores(source: Reranker, exported: Reranker, top: int = 10) -> dict[str, Any]:
    """The exported model's scores against the source's on the bundled sample: the largest difference in
    log-odds and the mean overlap of their top ``top`` documents per query."""
    queries, documents = _sample()
    differences, overlaps = [], []
    for query in queries:
        pairs = [(query, document) for document in documents]
        expected = np.array([pair.margin for pair in source._score_pairs(pairs)], dtype=np.float64)
        actual = np.array([pair.margin for pair in exported._score_pairs(pairs)], dtype=np.float64)
        differences.append(float(np.max(np.abs(expected - actual))))
        best = set(np.argsort(-expected, kind="stable")[:top]) & set(np.argsort(-actual, kind="stable")[:top])
        overlaps.append(len(best) / top)
    return {
        "queries": len(queries),
        "documents": len(documents),
        "max_abs_logit_difference": max(differences),
        f"top{top}_overlap": float(np.mean(overlaps)),
    }


def _staging(out: Path) -> Path:
    """A fresh folder beside ``out`` to write into; ``out`` itself must be absent, empty or an earlier artefact."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST_FILE).is_file())):
        raise FileExistsError(f"{str(out)!r} exists and is not an artefact: give a new or empty folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".export-", dir=out.parent))


def export_model(
    model: str,
    out: str | os.PathLike[str],
    *,
    runtime: str = "onnx",
    precision: str = "fp32",
    revision: str | None = None,
    trust_remote_code: bool = False,
    calibration: str | os.PathLike[str] | None = None,
) -> Manifest:
    """Export ``model`` (a hub id or a local PyTorch checkpoint) to the artefact folder ``out`` and return its
    manifest. Needs torch; the artefact does not. A ``calibration`` of the source is checked and copied in."""
    if runtime not in EXPORT_RUNTIMES:
        raise ValueError(f"runtime must be one of {EXPORT_RUNTIMES} for an export, got {runtime!r}")
    engine = RUNTIME_TABLE[runtime]
    engine.check("cpu", precision)
    reference = check_cross_encoder_reference(model, revision)
    encoder, num_labels, score_tokens = load_cross_encoder(reference, revision, "cpu", trust_remote_code)
    if score_tokens is not None:
        raise ValueError(
            f"{model!r} is a causal-LM reranker: its prompt needs transformers' chat template, so it is not exported; "
            "run it with runtime='torch' or 'openvino'"
        )
    activation = "identity" if num_labels == 2 else activation_name(encoder.activation_fn)
    if activation is None:
        raise ValueError(f"{model!r} scores through {type(encoder.activation_fn).__name__}, not Sigmoid or Identity")
    network, tokenizer = encoder.model.eval(), encoder.tokenizer
    commit = getattr(network.config, "_commit_hash", None)
    with quiet_loading(reference):
        graph = engine.export_graph(
            network, tokenizer, None, precision, {"name": reference, "revision": revision, "commit": commit}
        )
    max_length, max_positions = max_lengths(encoder)
    manifest = Manifest(
        runtime=runtime,
        precision=precision,
        graph=graph.name,
        num_labels=num_labels,
        activation=activation,
        max_length=max_length,
        max_positions=max_positions,
        source={"name": reference, "revision": revision, "commit": commit, "weights_digest": weights_digest(reference)},
    )
    target = Path(out)
    staging = _staging(target)
    try:
        for path in graph.parent.iterdir():  # the graph and its weights file (OpenVINO's .bin)
            shutil.copy2(path, staging / path.name)
        tokenizer.save_pretrained(staging)
        network.config.to_json_file(staging / "config.json")
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest.to_json(), indent=2) + "\n")
        source = Reranker(reference, runtime="torch", precision="fp32", device="cpu", calibration=None)
        checks = compare_scores(source, Reranker(str(staging), calibration=None))
        manifest = Manifest(**{**manifest.__dict__, "checks": checks})
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest.to_json(), indent=2) + "\n")
        if calibration is not None:
            Reranker(str(staging), calibration=calibration).load()  # refused here unless it fits the artefact
            shutil.copy2(calibration, staging / CALIBRATION_FILE)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("exported %s to %s (%s, %s): %s", model, target, runtime, precision, manifest.checks)
    return manifest
