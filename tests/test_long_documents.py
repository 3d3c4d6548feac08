"""Truncation keeps the query whole; window mode finds a passage beyond the token limit."""

from __future__ import annotations

import pytest

from rerank_plugins import Reranker
from rerank_plugins.encoding import PairEncoder
from rerank_plugins.loading import load_model

QUERY_ID = "49"  # "ADAR1 binds to Dicer to cleave pre-miRNA."
RELEVANT_TITLE_START = "ADAR1 Forms a Complex with Dicer"


@pytest.fixture(scope="module")
def long_case(
    scifact_corpus: dict[str, str], scifact_queries: dict[str, str], scifact_test_qrels: dict[str, set[str]]
) -> tuple[str, list[str]]:
    """A document whose relevant abstract starts after 512+ tokens of unrelated ones, and 10 distractors."""
    relevant = scifact_corpus[sorted(scifact_test_qrels[QUERY_ID])[0]]
    filler = list(scifact_corpus.values())[100:106]
    long_document = " ".join([*filler, relevant])
    return scifact_queries[QUERY_ID], [*list(scifact_corpus.values())[:10], long_document]


@pytest.mark.slow
def test_window_mode_finds_passage_that_truncation_misses(trained_model: str, long_case) -> None:
    query, documents = long_case
    long_index = len(documents) - 1
    windowing = Reranker(trained_model, device="cpu", precision="fp32", long_documents="window")
    filler = documents[long_index][: documents[long_index].index(RELEVANT_TITLE_START)]
    loaded = load_model(
        trained_model, revision=None, device="cpu", precision="fp32", runtime="torch", trust_remote_code=False
    )
    assert len(PairEncoder(loaded.tokenizer).tokenize([filler])[0]) > 512

    windowed = windowing.rank(query, documents)

    assert windowed[0].index == long_index
    assert windowed[0].relevance_score > 0.5
    assert windowed[0].windows >= 5 and windowed[0].truncated_tokens == 0
    for max_length in (None, 512):  # the model's own limit (256), and BERT's full 512 positions
        truncating = Reranker(trained_model, device="cpu", precision="fp32", max_length=max_length)
        truncated = {r.index: r for r in truncating.rank(query, documents)}
        assert truncated[long_index].truncated_tokens > 200
        assert truncated[long_index].relevance_score < 0.2
        assert truncating.rank(query, documents)[0].index != long_index


def test_window_mean_is_not_above_max(trained_model: str, long_case) -> None:
    query, documents = long_case
    by_max = Reranker(trained_model, precision="fp32", long_documents="window").score(query, documents[-1:])
    by_mean = Reranker(trained_model, precision="fp32", long_documents="window", window_aggregation="mean").score(
        query, documents[-1:]
    )
    assert by_mean[0] < by_max[0]


def test_truncation_cuts_the_document_and_keeps_the_query(random_model: str) -> None:
    loaded = load_model(
        random_model, revision=None, device="cpu", precision="fp32", runtime="torch", trust_remote_code=False
    )
    encoder = PairEncoder(loaded.tokenizer)
    query_ids = encoder.tokenize(["a fairly long question about proteins " * 4])[0]
    document_ids = encoder.tokenize(["tokens " * 500])[0]

    plan = encoder.plan(query_ids, document_ids, max_length=64, window=False, overlap=0)

    ((ids, types),) = plan.units
    assert len(ids) == 64
    assert ids[1 : 1 + len(query_ids)] == query_ids
    kept = 64 - 3 - len(query_ids)
    assert ids[2 + len(query_ids) : -1] == document_ids[:kept]
    assert plan.truncated_tokens == len(document_ids) - kept
    assert types == [0] * (len(query_ids) + 2) + [1] * (kept + 1)


def test_windows_overlap_and_cover_the_whole_document(random_model: str) -> None:
    loaded = load_model(
        random_model, revision=None, device="cpu", precision="fp32", runtime="torch", trust_remote_code=False
    )
    encoder = PairEncoder(loaded.tokenizer)
    query_ids = encoder.tokenize(["query"])[0]
    document_ids = list(range(1000, 1300))

    plan = encoder.plan(query_ids, document_ids, max_length=64, window=True, overlap=10)

    budget = 64 - 3 - len(query_ids)
    windows = [ids[2 + len(query_ids) : -1] for ids, _ in plan.units]
    assert all(len(window) <= budget for window in windows)
    assert windows[0][-10:] == windows[1][:10]
    assert sorted(set(token for window in windows for token in window)) == document_ids
    assert plan.truncated_tokens == 0


def test_an_overlong_query_is_refused_never_cut(random_model: str) -> None:
    """A query cut to fit would lose its end (often the question itself) and still score: refuse it instead."""
    reranker = Reranker(random_model, precision="fp32", max_length=32)
    fits = "word " * reranker.max_query_tokens
    assert len(reranker.score(fits, ["a document"])) == 1
    with pytest.raises(ValueError, match=r"the query is 100 tokens; this model keeps at most 22 within max_length=32"):
        reranker.score("word " * 100, ["a document"])
    with pytest.raises(ValueError, match="the query is 23 tokens"):  # one token over: refused as well
        reranker.rank_many(["a short query", fits + "word"], [["doc"], ["doc"]])


def test_costing_an_overlong_query_logs_nothing(random_model: str, caplog: pytest.LogCaptureFixture) -> None:
    """A service costs every request before it refuses it: that must not log a cut per document."""
    reranker = Reranker(random_model, precision="fp32", max_length=32)
    with caplog.at_level("WARNING"):
        cost = reranker.token_cost("word " * 100, ["a document"] * 20)
    assert cost.query_tokens == 100 and len(cost.pair_tokens) == 20
    assert all(tokens <= 32 for tokens in cost.pair_tokens)
    assert "leaves no room" not in caplog.text
