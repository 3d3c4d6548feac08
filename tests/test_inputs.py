"""Bad input gets a clear Python error before the model is touched; odd but valid input is scored."""

from __future__ import annotations

import pytest

from rerank_plugins import Reranker


@pytest.fixture()
def fresh(random_model: str) -> Reranker:
    return Reranker(random_model, device="cpu", precision="fp32")


@pytest.mark.parametrize("query", [None, 3, b"bytes", ["list"], {"q": 1}])
def test_non_str_query_is_a_type_error(fresh: Reranker, query: object) -> None:
    with pytest.raises(TypeError, match=f"query must be a str, got {type(query).__name__}"):
        fresh.rank(query, ["doc"])  # type: ignore[arg-type]


@pytest.mark.parametrize(("bad", "type_name"), [(None, "NoneType"), (1.5, "float"), (b"x", "bytes"), ({}, "dict")])
def test_non_str_document_names_position_and_type(fresh: Reranker, bad: object, type_name: str) -> None:
    with pytest.raises(TypeError, match=rf"documents\[2\] must be a str, got {type_name}"):
        fresh.score("q", ["a", "b", bad, "d"])  # type: ignore[list-item]


def test_a_bare_string_is_not_a_document_list(fresh: Reranker) -> None:
    with pytest.raises(TypeError, match="documents must be a list of str, got str"):
        fresh.rank("q", "just one string")


def test_empty_documents_return_empty_without_loading(fresh: Reranker) -> None:
    assert fresh.score("q", []) == []
    assert fresh.rank("q", [], top_n=3) == []
    assert fresh.rank_many([], []) == []
    assert fresh._loaded is None


@pytest.mark.parametrize("top_n", [0, -1])
def test_top_n_below_one_is_a_value_error(fresh: Reranker, top_n: int) -> None:
    with pytest.raises(ValueError, match="top_n must be >= 1"):
        fresh.rank("q", ["a"], top_n=top_n)


@pytest.mark.parametrize("threshold", [-0.1, 1.5])
def test_threshold_outside_unit_interval_is_a_value_error(fresh: Reranker, threshold: float) -> None:
    with pytest.raises(ValueError, match=r"score_threshold .* \[0, 1\]"):
        fresh.rank("q", ["a"], score_threshold=threshold)


def test_empty_and_odd_strings_are_scored(fresh: Reranker) -> None:
    documents = [
        "",
        "   \n\t",
        "🙂🚀 emoji",
        "مرحبا بالعالم",
        "e\u0301\u0301",
        "zero\u200bwidth",
        "nul\x00ctl\x07",
        "lone \ud800 surrogate",
    ]
    scores = fresh.score("", documents)
    assert len(scores) == len(documents) and all(isinstance(s, float) for s in scores)
    ranking = fresh.rank("query", documents)
    assert sorted(r.index for r in ranking) == list(range(len(documents)))
    assert [r.document for r in sorted(ranking, key=lambda r: r.index)] == documents


def test_inputs_are_not_mutated(fresh: Reranker) -> None:
    documents = ["b", "a", "c"]
    fresh.rank("q", documents, top_n=1)
    assert documents == ["b", "a", "c"]


def test_tuple_of_documents_is_accepted(fresh: Reranker) -> None:
    assert len(fresh.rank("q", ("a", "b"))) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size must be a positive int"),
        ({"max_length": -5}, "max_length must be a positive int"),
        ({"long_documents": "split"}, "long_documents must be 'truncate' or 'window'"),
        ({"window_aggregation": "sum"}, "window_aggregation must be 'max' or 'mean'"),
        ({"cache_size": -1}, "cache_size must be an int >= 0"),
        ({"precision": "fp8"}, "precision must be one of"),
        ({"device": "tpu:7"}, "is not a torch device"),
    ],
)
def test_bad_settings_fail_at_construction(random_model: str, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Reranker(random_model, **kwargs)


def test_max_length_beyond_position_embeddings_is_refused(random_model: str) -> None:
    with pytest.raises(ValueError, match="exceeds the 512 positions"):
        Reranker(random_model, max_length=4096).score("q", ["d"])


@pytest.mark.parametrize("query", ["", "  \n\t"])
def test_empty_query_is_refused_by_every_ranking_call(fresh: Reranker, query: str) -> None:
    with pytest.raises(ValueError, match=r"query is empty.*nothing to rank against"):
        fresh.rank(query, ["a"])
    with pytest.raises(ValueError, match=r"queries\[1\] is empty"):
        fresh.rank_many(["q", query], [["a"], ["b"]])
