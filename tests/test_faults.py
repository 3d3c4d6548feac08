"""Faults: out-of-memory batches are split and retried; clear errors when even one pair does not fit."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
import torch

from rerank_plugins import Reranker


class OutOfMemoryAbove:
    """Wraps a model's forward pass so batches larger than ``limit`` fail like a full GPU does."""

    def __init__(self, original: Callable[[dict[str, torch.Tensor]], torch.Tensor], limit: int) -> None:
        self.original, self.limit, self.batch_sizes = original, limit, []

    def __call__(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        size = inputs["input_ids"].shape[0]
        self.batch_sizes.append(size)
        if size > self.limit:
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate for a batch of {size}")
        return self.original(inputs)


def with_forward(reranker: Reranker, forward: Callable[[dict[str, torch.Tensor]], torch.Tensor]) -> Reranker:
    """A fresh core whose model runs ``forward`` (the shared loaded model is left as it is)."""
    loaded = reranker._model()[0]
    clone = Reranker(**reranker.options())
    clone._loaded, clone._encoder = dataclasses.replace(loaded, forward=forward), reranker._encoder
    return clone


@pytest.fixture()
def flaky(random_model: str):  # type: ignore[no-untyped-def]
    reranker = Reranker(random_model, precision="fp32", batch_size=16).load()
    wrapper = OutOfMemoryAbove(reranker._model()[0].forward, limit=4)
    return with_forward(reranker, wrapper), wrapper


def test_oom_batches_are_retried_in_halves(flaky, random_model: str, caplog: pytest.LogCaptureFixture) -> None:
    reranker, wrapper = flaky
    documents = [f"document {i} " * (i % 5 + 1) for i in range(16)]
    with caplog.at_level("WARNING"):
        scores = reranker.score("query", documents)
    assert wrapper.batch_sizes[0] == 16 and max(wrapper.batch_sizes[1:]) <= 8
    assert "out of memory on a batch of 16" in caplog.text
    wrapper.limit = 100
    assert scores == pytest.approx(reranker.score("query", documents), abs=1e-5)


def test_oom_on_a_single_pair_is_a_clear_memory_error(flaky) -> None:
    reranker, wrapper = flaky
    wrapper.limit = 0
    with pytest.raises(MemoryError, match="out of memory scoring a single pair .* lower max_length"):
        reranker.score("query", ["a", "b", "c"])


def test_other_runtime_errors_are_not_retried(random_model: str) -> None:
    calls = []

    def broken(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        calls.append(1)
        raise RuntimeError("some other failure")

    reranker = with_forward(Reranker(random_model, precision="fp32").load(), broken)
    with pytest.raises(RuntimeError, match="some other failure"):
        reranker.score("q", ["a", "b"])
    assert len(calls) == 1


@pytest.mark.slow
def test_cache_is_keyed_by_revision_and_precision(random_model: str) -> None:
    fp32 = Reranker(random_model, precision="fp32", cache_size=10)
    bf16 = Reranker(random_model, precision="bf16", cache_size=10)
    fp32.score("q", ["d"])
    bf16.score("q", ["d"])
    assert fp32._settings_key(fp32._loaded) != bf16._settings_key(bf16._loaded)
    other_revision = Reranker(random_model, precision="fp32", revision="v2", cache_size=10)
    other_revision.score("q", ["d"])
    assert other_revision._loaded is not fp32._loaded
    assert other_revision._settings_key(other_revision._loaded) != fp32._settings_key(fp32._loaded)
