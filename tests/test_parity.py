"""fp32 scores equal sentence-transformers' CrossEncoder.predict, whatever our batching does."""

from __future__ import annotations

import numpy as np
import pytest
from sentence_transformers import CrossEncoder

from rerank_plugins import Reranker


def _varied_documents(corpus: dict[str, str]) -> list[str]:
    texts = list(corpus.values())[:40]
    # Very short, empty, medium and over-long (truncated) documents, deliberately not in length order.
    return ["", "Short.", *texts[:10], "cells " * 400, *texts[10:], "A single sentence about T cells."]


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["torch", "openvino"])
@pytest.mark.parametrize("model_fixture", ["trained_model", "random_model"])
def test_fp32_scores_match_cross_encoder_predict(
    request: pytest.FixtureRequest, model_fixture: str, runtime: str, scifact_corpus: dict[str, str]
) -> None:
    path = request.getfixturevalue(model_fixture)
    query = "Vitamin B12 deficiency raises homocysteine levels in the blood."
    documents = _varied_documents(scifact_corpus)
    expected = CrossEncoder(path, device="cpu").predict([(query, doc) for doc in documents], batch_size=7)

    reranker = Reranker(path, device="cpu", precision="fp32", runtime=runtime, batch_size=5)  # type: ignore[arg-type]
    scores = reranker.score(query, documents)

    assert all(type(score) is float for score in scores)
    np.testing.assert_allclose(scores, expected, atol=1e-4, rtol=0)


def test_order_is_restored_after_length_sorting(random_model: str) -> None:
    reranker = Reranker(random_model, device="cpu", precision="fp32", batch_size=2)
    query = "which protein binds dicer"
    documents = ["word " * n for n in (50, 3, 120, 1, 77, 9)]
    one_by_one = [reranker.score(query, [doc])[0] for doc in documents]
    np.testing.assert_allclose(reranker.score(query, documents), one_by_one, atol=1e-5, rtol=0)
    np.testing.assert_allclose(reranker.score(query, documents[::-1]), one_by_one[::-1], atol=1e-5, rtol=0)
