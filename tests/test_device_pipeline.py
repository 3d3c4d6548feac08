"""The device pipeline on the CPU: unpadded (packed) batches, token budgets, chunk pipelining, no cache work.

The packed forward pass runs here with SDPA over the pairs padded for attention alone; on CUDA it
uses flash attention over variable lengths (the CUDA tests at the end run only where there is one).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sentence_transformers import CrossEncoder

from rerank_plugins import Reranker, pipeline
from rerank_plugins import reranker as reranker_module
from rerank_plugins.runtime.packed import attention_kernel, padded_attention

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def claims(scifact_queries: dict[str, str]) -> list[str]:
    return list(scifact_queries.values())[:6]


@pytest.fixture(scope="module")
def abstracts(scifact_corpus: dict[str, str]) -> list[str]:
    return ["", "T cells.", *list(scifact_corpus.values())[:18], "cells " * 600]


def _ordered_scores(reranker: Reranker, query: str, documents: list[str]) -> np.ndarray:
    return np.array([r.score for r in sorted(reranker.rank(query, documents), key=lambda r: r.index)])


def test_padded_attention_equals_sdpa_per_sequence() -> None:
    generator = torch.Generator().manual_seed(1)
    lengths = [7, 1, 30, 12]
    cu_seq = torch.tensor([0, *np.cumsum(lengths)], dtype=torch.int32)
    query, key, value = (torch.randn(sum(lengths), 4, 16, generator=generator) for _ in range(3))

    packed = padded_attention(query, key, value, cu_seq, cu_seq, max(lengths), max(lengths), 0.25)

    for start, end in zip(cu_seq[:-1].tolist(), cu_seq[1:].tolist(), strict=True):
        q, k, v = (rows[start:end].transpose(0, 1) for rows in (query, key, value))
        expected = F.scaled_dot_product_attention(q, k, v, scale=0.25).transpose(0, 1)
        torch.testing.assert_close(packed[start:end], expected, atol=1e-5, rtol=1e-5)
    first_only = torch.arange(len(lengths) + 1, dtype=torch.int32)  # one query row per sequence ([CLS])
    firsts = cu_seq[:-1].long()
    cls = padded_attention(query[firsts], key, value, first_only, cu_seq, 1, max(lengths), 0.25)
    torch.testing.assert_close(cls, packed[firsts], atol=1e-5, rtol=1e-5)


def test_attention_kernel_off_cuda_is_padded_sdpa() -> None:
    assert attention_kernel(torch.device("cpu"), torch.float32) is padded_attention
    assert attention_kernel(torch.device("cpu"), torch.bfloat16) is padded_attention


def test_unpadded_scores_equal_cross_encoder_predict(
    trained_model: str, claims: list[str], abstracts: list[str]
) -> None:
    """The packed [CLS]-only pass of the real SciFact model gives CrossEncoder.predict's scores."""
    expected = CrossEncoder(trained_model, device="cpu").predict(
        [(claims[0], text) for text in abstracts], batch_size=8, show_progress_bar=False
    )
    unpadded = Reranker(trained_model, device="cpu", runtime="torch", precision="fp32", unpadded=True, batch_size=7)
    padded = Reranker(trained_model, device="cpu", runtime="torch", precision="fp32", unpadded=False, batch_size=7)

    got = _ordered_scores(unpadded, claims[0], abstracts)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    np.testing.assert_allclose(got, _ordered_scores(padded, claims[0], abstracts), atol=1e-4)
    assert unpadded.stats.padding_waste == 0.0 and padded.stats.padding_waste > 0.0


@pytest.mark.slow
def test_unpadded_windows_and_two_label_models(random_model: str, tmp_path, abstracts: list[str]) -> None:  # type: ignore[no-untyped-def]
    from tests.paths import build_random_cross_encoder

    two_labels = str(build_random_cross_encoder(tmp_path / "two", num_labels=2))
    for model in (random_model, two_labels):
        options = {"device": "cpu", "runtime": "torch", "precision": "fp32", "max_length": 64}
        for mode in ("truncate", "window"):
            on = Reranker(model, unpadded=True, long_documents=mode, **options)  # type: ignore[arg-type]
            off = Reranker(model, unpadded=False, long_documents=mode, **options)  # type: ignore[arg-type]
            np.testing.assert_allclose(
                _ordered_scores(on, "homocysteine", abstracts),
                _ordered_scores(off, "homocysteine", abstracts),
                atol=1e-4,
            )


def test_token_budget_bounds_every_forward_pass(trained_model: str, claims: list[str], abstracts: list[str]) -> None:
    reranker = Reranker(
        trained_model, device="cpu", runtime="torch", precision="fp32", batch_size=64, max_batch_tokens=600
    )
    loaded, _ = reranker._model()
    shapes: list[tuple[int, int]] = []

    def spy(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        shapes.append(tuple(inputs["input_ids"].shape))  # type: ignore[arg-type]
        return loaded.forward(inputs)

    reference = _ordered_scores(
        Reranker(trained_model, device="cpu", runtime="torch", precision="fp32"), claims[1], abstracts
    )
    reranker._loaded = dataclasses.replace(loaded, forward=spy)
    np.testing.assert_allclose(_ordered_scores(reranker, claims[1], abstracts), reference, atol=1e-4)
    assert sum(rows for rows, _ in shapes) == len(abstracts)
    assert all(rows * width <= 600 or rows == 1 for rows, width in shapes)
    assert max(rows for rows, _ in shapes) > 2  # short pairs still share a batch


@pytest.mark.slow
def test_chunks_pipelined_in_a_worker_equal_one_query_at_a_time(
    random_model: str, claims: list[str], abstracts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """rank_many over several chunks, planned ahead in a worker thread, ranks as rank does query by query."""
    reranker = Reranker(random_model, device="cpu", runtime="torch", precision="fp32", batch_size=16)
    expected = [reranker.rank(claim, abstracts) for claim in claims]
    monkeypatch.setattr(reranker_module, "CHUNK_PAIRS", 25)
    for ahead in (False, True):
        monkeypatch.setattr(pipeline, "plan_ahead", lambda device, chunks, ahead=ahead: ahead and chunks > 1)
        reranker.reset_stats()
        got = reranker.rank_many(claims, [abstracts] * len(claims))
        assert [[(r.index, r.truncated_tokens) for r in ranking] for ranking in got] == [
            [(r.index, r.truncated_tokens) for r in ranking] for ranking in expected
        ]
        for mine, theirs in zip(got, expected, strict=True):
            np.testing.assert_allclose([r.score for r in mine], [r.score for r in theirs], atol=1e-5)
        assert reranker.stats.pairs == len(claims) * len(abstracts)


@pytest.mark.slow
def test_no_cache_work_when_the_cache_is_off(
    random_model: str, abstracts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: object) -> bytes:
        raise AssertionError("pair_digest called with the cache off")

    monkeypatch.setattr(reranker_module, "pair_digest", refuse)
    assert len(Reranker(random_model, device="cpu").rank("q", abstracts)) == len(abstracts)
    with pytest.raises(AssertionError, match="cache off"):
        Reranker(random_model, device="cpu", cache_size=8).rank("q", abstracts)


def test_batch_defaults_per_device_and_bad_values(random_model: str) -> None:
    reranker = Reranker(random_model, device="cpu")
    assert (reranker.batch_size, reranker.max_batch_tokens, reranker.unpadded) == (32, 16_384, False)
    assert Reranker(**reranker.options()).options() == reranker.options()
    with pytest.raises(ValueError, match="max_batch_tokens must be a positive int"):
        Reranker(random_model, max_batch_tokens=0)
    with pytest.raises(ValueError, match="unpadded must be None, True or False"):
        Reranker(random_model, unpadded="yes")  # type: ignore[arg-type]


@needs_cuda
def test_cuda_defaults_and_varlen_kernel() -> None:
    from torch.nn.attention.varlen import varlen_attn  # noqa: F401

    device = torch.device("cuda")
    assert attention_kernel(device, torch.float16) is not padded_attention
    assert attention_kernel(device, torch.float32) is padded_attention


@needs_cuda
def test_cuda_auto_ranks_as_cpu_fp32(trained_model: str, claims: list[str], abstracts: list[str]) -> None:
    cpu = Reranker(trained_model, device="cpu", runtime="torch", precision="fp32")
    cuda = Reranker(trained_model, device="cuda")
    assert (cuda.batch_size, cuda.max_batch_tokens, cuda.unpadded, cuda.precision) == (512, 65_536, True, "fp16")
    for claim in claims:
        expected, got = _ordered_scores(cpu, claim, abstracts), _ordered_scores(cuda, claim, abstracts)
        assert np.corrcoef(expected, got)[0, 1] > 0.999
        assert set(np.argsort(-expected)[:5]) == set(np.argsort(-got)[:5])


@pytest.mark.slow
def test_each_text_is_tokenised_once_per_call_across_chunks(
    random_model: str, claims: list[str], abstracts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    reranker = Reranker(random_model, device="cpu")
    _, encoder = reranker._model()
    tokenised: list[str] = []
    real = encoder.tokenize

    def counting(texts: list[str]) -> list[list[int]]:
        tokenised.extend(texts)
        return real(texts)

    monkeypatch.setattr(encoder, "tokenize", counting)
    monkeypatch.setattr(reranker_module, "CHUNK_PAIRS", 10)
    rankings = reranker.rank_many(claims, [abstracts] * len(claims))
    assert sorted(tokenised) == sorted({*claims, *abstracts})
    assert [len(ranking) for ranking in rankings] == [len(abstracts)] * len(claims)
