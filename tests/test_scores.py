"""Score semantics: two-label models, deduplication, the LRU cache and its keys."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import rerank_plugins.pipeline as pipeline
import rerank_plugins.reranker as reranker_module
from rerank_plugins import Reranker
from tests.paths import build_random_cross_encoder


@pytest.fixture()
def scored_units(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the model inputs that reach a forward pass (calls through to the real scorer)."""
    counts: list[int] = []
    real = pipeline.launch

    def counting(model, encoder, units, *args, **kwargs):  # type: ignore[no-untyped-def]
        counts.append(len(units))
        return real(model, encoder, units, *args, **kwargs)

    monkeypatch.setattr(pipeline, "launch", counting)
    return counts


@pytest.mark.slow
def test_two_label_model_scores_log_odds_and_softmax_relevance(tmp_path: Path) -> None:
    path = build_random_cross_encoder(tmp_path, num_labels=2, seed=3)
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    network = AutoModelForSequenceClassification.from_pretrained(path).eval()
    query, documents = "what binds dicer", ["ADAR1 binds Dicer.", "The weather is fine.", ""]
    with torch.inference_mode():
        logits = network(**tokenizer([query] * 3, documents, padding=True, return_tensors="pt")).logits

    ranking = Reranker(str(path), precision="fp32").rank(query, documents)
    by_index = sorted(ranking, key=lambda result: result.index)

    np.testing.assert_allclose([r.score for r in by_index], (logits[:, 1] - logits[:, 0]).numpy(), atol=1e-4)
    np.testing.assert_allclose([r.relevance_score for r in by_index], logits.softmax(-1)[:, 1].numpy(), atol=1e-5)


def test_identical_documents_are_scored_once(random_model: str, scored_units: list[int]) -> None:
    reranker = Reranker(random_model, precision="fp32")
    documents = ["alpha", "beta", "alpha", "alpha", "beta", "gamma"]
    scores = reranker.score("q", documents)
    assert scored_units == [3]
    assert scores[0] == scores[2] == scores[3] and scores[1] == scores[4]
    assert reranker.score("q", ["alpha", "beta", "gamma"]) == [scores[0], scores[1], scores[5]]


def test_cache_serves_repeats_without_running_the_model(random_model: str, scored_units: list[int]) -> None:
    reranker = Reranker(random_model, precision="fp32", cache_size=100)
    first = reranker.score("q", ["a", "b"])
    second = reranker.score("q", ["b", "a", "c"])
    assert scored_units == [2, 1]
    assert second[:2] == [first[1], first[0]]


def test_cache_is_bounded_lru(random_model: str, scored_units: list[int]) -> None:
    reranker = Reranker(random_model, precision="fp32", cache_size=2)
    reranker.score("q", ["a", "b", "c"])
    assert len(reranker._cache) == 2
    reranker.score("q", ["a"])  # evicted: scored again
    reranker.score("q", ["a"])  # now cached
    assert scored_units == [3, 1]


def test_cache_off_by_default(random_model: str, scored_units: list[int]) -> None:
    reranker = Reranker(random_model, precision="fp32")
    reranker.score("q", ["a"])
    reranker.score("q", ["a"])
    assert scored_units == [1, 1]
    assert reranker.cache_size == 0


def test_cache_never_serves_a_score_from_other_settings(trained_model: str, scored_units: list[int]) -> None:
    reranker = Reranker(trained_model, precision="fp32", cache_size=100)
    query, document = "ADAR1 binds to Dicer.", "filler words " * 300 + "ADAR1 forms a complex with Dicer."
    truncated = reranker.rank(query, [document])[0]
    reranker.long_documents = "window"
    windowed = reranker.rank(query, [document])[0]
    reranker._max_length = 64
    short = reranker.rank(query, [document])[0]
    assert len(scored_units) == 3  # every change of settings ran the model again
    assert truncated.windows == 1 and windowed.windows > 1 and short.windows > windowed.windows
    assert len({truncated.score, windowed.score, short.score}) == 3
    assert reranker.rank(query, [document])[0] == short
    assert len(scored_units) == 3  # the same settings again: served from the cache


def test_cache_is_per_model(trained_model: str, random_model: str) -> None:
    trained = Reranker(trained_model, precision="fp32", cache_size=10)
    random = Reranker(random_model, precision="fp32", cache_size=10)
    assert trained.score("q", ["d"]) != random.score("q", ["d"])


def test_large_jobs_are_scored_in_bounded_chunks(random_model: str, scored_units, monkeypatch) -> None:
    reranker = Reranker(random_model, precision="fp32")
    documents = [f"text {i} " * (i % 7 + 1) for i in range(10)]
    whole = reranker.score("q", documents)
    monkeypatch.setattr(reranker_module, "CHUNK_PAIRS", 4)
    chunked = reranker.score("q", documents)
    assert scored_units == [10, 4, 4, 2]
    assert chunked == pytest.approx(whole, abs=1e-5)


def test_progress_bar_only_when_asked_or_large(random_model: str, capsys, monkeypatch) -> None:
    Reranker(random_model, precision="fp32").score("q", ["a", "b"])
    assert "Reranking" not in capsys.readouterr().err
    Reranker(random_model, precision="fp32", show_progress_bar=True).score("q", ["a", "b"])
    assert "Reranking" in capsys.readouterr().err
    monkeypatch.setattr(reranker_module, "PROGRESS_MIN_PAIRS", 2)
    Reranker(random_model, precision="fp32").score("q", ["a", "b"])
    assert "2/2" in capsys.readouterr().err
