"""The ONNX Runtime runtime: parity with sentence-transformers in fp32, int8 ranking, the export cache,
and refusals. It is the third runtime behind ``runtime.interface.ModelRuntime``."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy.stats import spearmanr
from sentence_transformers import CrossEncoder

from rerank_plugins import Reranker
from rerank_plugins._optional import installed
from rerank_plugins.loading import _REGISTRY
from rerank_plugins.runtime import resolve_runtime
from rerank_plugins.runtime.exporting import cache_root
from rerank_plugins.runtime.onnx import OnnxRuntime
from rerank_plugins.runtime.table import RUNTIME_TABLE

pytest.importorskip("onnxruntime", reason="the onnx extra is part of [all]; CI installs it")


def _jobs(
    scifact_queries: dict[str, str],
    scifact_test_qrels: dict[str, set[str]],
    scifact_slice: dict[str, str],
    claims: int = 3,
) -> list[tuple[str, list[str]]]:
    """Up to 30 abstracts for each of the first ``claims`` test claims: the judged ones, then others."""
    others = list(scifact_slice)[-27:]
    return [
        (scifact_queries[query_id], [scifact_slice[doc_id] for doc_id in [*sorted(judged), *others][:30]])
        for query_id, judged in list(scifact_test_qrels.items())[:claims]
    ]


def _forget(model: str) -> None:
    """As in a new process: no ONNX model of ``model`` is loaded yet."""
    for key in [key for key in _REGISTRY if key[0] == model and key[4] == "onnx"]:
        del _REGISTRY[key]


@pytest.mark.slow
def test_onnx_fp32_equals_cross_encoder_predict_on_science_text(
    trained_model: str,
    scifact_queries: dict[str, str],
    scifact_test_qrels: dict[str, set[str]],
    scifact_slice: dict[str, str],
) -> None:
    reference = CrossEncoder(trained_model, device="cpu")
    onnx = Reranker(trained_model, device="cpu", precision="fp32", runtime="onnx")
    worst = 0.0
    edge_cases = ("Vitamin B12 deficiency raises homocysteine.", ["", "Short.", "cells " * 400, "T cells."])
    for query, texts in [*_jobs(scifact_queries, scifact_test_qrels, scifact_slice), edge_cases]:
        expected = reference.predict([(query, text) for text in texts], batch_size=32)
        scores = onnx.score(query, texts)
        assert all(type(score) is float for score in scores)
        worst = max(worst, float(np.abs(np.asarray(scores) - expected).max()))
    assert worst <= 1e-4, worst
    assert onnx._model()[0].runtime == "onnx" and "runtime='onnx'" in repr(onnx)


@pytest.mark.slow
def test_onnx_int8_ranks_like_fp32(
    trained_model: str,
    scifact_queries: dict[str, str],
    scifact_test_qrels: dict[str, set[str]],
    scifact_slice: dict[str, str],
) -> None:
    """Over 12 claims (measured: top-1 12/12, top-10 overlap mean 0.87, Pearson >= 0.97, Spearman mean 0.93)."""
    reference = Reranker(trained_model, device="cpu", precision="fp32", runtime="onnx")
    quantised = Reranker(trained_model, device="cpu", precision="int8", runtime="onnx")
    overlaps, rank_correlations = [], []
    for query, texts in _jobs(scifact_queries, scifact_test_qrels, scifact_slice, claims=12):
        expected, scores = np.asarray(reference.score(query, texts)), np.asarray(quantised.score(query, texts))
        assert not np.array_equal(scores, expected)  # int8 weights: other numbers
        assert np.argmax(scores) == np.argmax(expected)  # the same best document for every claim
        assert np.corrcoef(expected, scores)[0, 1] > 0.95
        top = set(np.argsort(expected)[::-1][:10])
        overlaps.append(len(top & set(np.argsort(scores)[::-1][:10])) / 10)
        rank_correlations.append(spearmanr(expected, scores).statistic)
    assert np.mean(overlaps) >= 0.8 and min(overlaps) >= 0.6, overlaps
    assert np.mean(rank_correlations) > 0.85, rank_correlations


@pytest.mark.slow
def test_onnx_exports_are_cached_and_reused(random_model: str, caplog: pytest.LogCaptureFixture) -> None:
    _forget(random_model)
    with caplog.at_level(logging.INFO, logger="rerank_plugins"):
        first = Reranker(random_model, precision="fp32", runtime="onnx").score("q", ["a document"])
    exported = sorted(cache_root().glob("onnx/*/model.onnx"))
    assert exported and "exporting" in caplog.text
    _forget(random_model)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="rerank_plugins"):
        again = Reranker(random_model, precision="fp32", runtime="onnx").score("q", ["a document"])
    assert "exporting" not in caplog.text and sorted(cache_root().glob("onnx/*/model.onnx")) == exported
    assert again == first
    Reranker(random_model, precision="int8", runtime="onnx").score("q", ["a document"])
    assert len(list(cache_root().glob("onnx/*/model.onnx"))) == len(exported) + 1  # int8 weights: own export
    assert not list(cache_root().glob("onnx/*/fp32.onnx"))  # the unquantised step is not left behind


def test_onnx_refuses_what_it_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="runtime='onnx' runs on the CPU only"):
        resolve_runtime("onnx", "cuda", "fp32")
    for precision in ("fp16", "bf16"):
        with pytest.raises(ValueError, match=f"runtime='onnx' supports precision 'fp32' or 'int8', not '{precision}'"):
            resolve_runtime("onnx", "cpu", precision)
    assert resolve_runtime("onnx", "cpu", "int8") == "onnx"
    assert resolve_runtime("auto", "cpu", "fp32") != "onnx"  # chosen by name only
    monkeypatch.setattr(OnnxRuntime, "available", lambda self: False)
    with pytest.raises(ImportError, match=r'pip install "rerank-plugins\[onnx\]"'):
        resolve_runtime("onnx", "cpu", "fp32")


def test_every_runtime_is_behind_the_interface() -> None:
    assert set(RUNTIME_TABLE) == {"torch", "openvino", "onnx"}
    assert RUNTIME_TABLE["openvino"].width(17, 512) == 32 and RUNTIME_TABLE["onnx"].width(17, 512) == 17
    assert RUNTIME_TABLE["torch"].width(17, 512) == 17


@pytest.mark.slow
def test_bench_measures_the_onnx_runtime_beside_sentence_transformers(
    trained_model: str,
    scifact_queries: dict[str, str],
    scifact_test_qrels: dict[str, set[str]],
    scifact_slice: dict[str, str],
) -> None:
    from rerank_plugins.evaluation.speed import Workload, benchmark

    jobs = _jobs(scifact_queries, scifact_test_qrels, scifact_slice)
    query_ids = list(scifact_test_qrels)[: len(jobs)]
    workload = Workload(
        queries=[query for query, _ in jobs],
        doc_ids=[[str(index) for index in range(8)] for _ in jobs],
        texts=[texts[:8] for _, texts in jobs],
        qrels={query_id: {"0": 1} for query_id in query_ids},
        query_ids=query_ids,
    )
    report = benchmark(workload, trained_model, modes=["onnx-fp32"], batch_size=8, latency_queries=2)
    baseline, *backends, ours = report.modes
    assert baseline.name == "sentence-transformers predict fp32" and "(onnx fp32)" in ours.name
    assert ours.ndcg_at_10 == pytest.approx(baseline.ndcg_at_10, abs=1e-3)  # fp32: the same scores
    if installed("optimum.onnxruntime"):  # what its ONNX backend imports: optimum-onnx (.ci/run installs it)
        assert [row.name for row in backends] == ["sentence-transformers predict onnx fp32"]
        assert ours.backend_speedup is not None and ours.backend_speedup > 0
    else:
        assert ours.backend_speedup is None
