"""The shared int and number checks, and the error each caller raises through them (unchanged by sharing)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rerank_plugins.fusion import check_fusion
from rerank_plugins.remote.wire import MalformedAnswer, parse_response
from rerank_plugins.training import TrainingConfig
from rerank_plugins.validation import check_count, check_score_threshold, check_top_n, is_int, is_number


@pytest.mark.parametrize(
    ("value", "integer", "number"),
    [(3, True, True), (0, True, True), (2.0, False, True), (True, False, False), (False, False, False)]
    + [("3", False, False), (None, False, False), (np.int64(3), False, False)],
)
def test_bools_are_neither_ints_nor_numbers(value: Any, integer: bool, number: bool) -> None:
    assert is_int(value) is integer
    assert is_number(value) is number


def test_check_count_raises_type_error_for_non_ints_and_value_error_below_the_bound() -> None:
    assert check_count(0, "n", 0) == 0
    with pytest.raises(TypeError, match="n must be an int, got bool"):
        check_count(True, "n", 0)
    with pytest.raises(ValueError, match="n must be >= 1, got 0"):
        check_count(0, "n", 1)


@pytest.mark.parametrize("value", [True, 1.0, "2", None, 0])
def test_check_count_with_an_error_raises_it_for_both(value: Any) -> None:
    with pytest.raises(LookupError, match=rf"n must be an int >= 1, got {value!r}"):
        check_count(value, "n", 1, error=LookupError)


def test_top_n_and_threshold_keep_their_errors() -> None:
    assert check_top_n(None) is None and check_top_n(2) == 2
    with pytest.raises(TypeError, match="top_n must be an int or None, got bool"):
        check_top_n(True)
    with pytest.raises(ValueError, match="top_n must be >= 1, got 0"):
        check_top_n(0)
    with pytest.raises(TypeError, match="score_threshold must be a number or None, got bool"):
        check_score_threshold(True)


@pytest.mark.parametrize(("name", "least"), [("epochs", 1), ("dev_top_k", 1), ("hard_negatives", 0)])
@pytest.mark.parametrize("bad", [True, 1.5, "2", -1])
def test_training_config_counts_are_value_errors(name: str, least: int, bad: Any) -> None:
    if bad == -1 and least == 1:
        bad = 0
    with pytest.raises(ValueError, match=rf"{name} must be an int >= {least}, got {bad!r}"):
        TrainingConfig(**{name: bad})


def test_fusion_numbers_refuse_bools_and_take_numpy() -> None:
    assert check_fusion([np.float32(1.0), np.int64(2)], 0.5, 2) == [1.0, 2.0]
    with pytest.raises(ValueError, match="fusion_weight must be a number in"):
        check_fusion([1.0], True, 1)
    with pytest.raises(TypeError, match=r"retrieval_scores\[0\] must be a number, got bool"):
        check_fusion([True], 0.5, 1)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"index": True, "score": 1.0, "relevance_score": 0.5}, r"results\[0\]\.index is True, not an int"),
        ({"index": 0, "score": True, "relevance_score": 0.5}, r"results\[0\]\.score is bool, not a number"),
        ({"index": 0, "score": 1.0, "relevance_score": 0.5, "windows": True}, r"windows is True, not an int >= 1"),
        ({"index": 0, "score": 1.0, "relevance_score": 0.5, "span": [0, True]}, r"span is \[0, True\]"),
    ],
)
def test_the_wire_refuses_bools_for_ints_and_numbers(row: dict[str, Any], message: str) -> None:
    with pytest.raises(MalformedAnswer, match=message):
        parse_response("rerank-plugins", {"results": [row]}, [10])


def test_faiss_ks_are_value_errors() -> None:
    pytest.importorskip("faiss")
    from rerank_plugins.retrieval import FaissRetriever

    retriever = FaissRetriever.__new__(FaissRetriever)  # the check runs before any model is needed
    for bad in (True, 0, 2.0):
        with pytest.raises(ValueError, match=rf"k must be an int >= 1, got {bad!r}"):
            retriever.search_many(["q"], k=bad)
    pytest.importorskip("llama_index.core")
    from rerank_plugins.llama_index import FaissNodeRetriever

    with pytest.raises(ValueError, match="similarity_top_k must be an int >= 1, got True"):
        FaissNodeRetriever(retriever, similarity_top_k=True)
