"""rank/rank_many semantics, proven on the real SciFact-trained model where quality is claimed."""

from __future__ import annotations

import math

import pytest

from rerank_plugins import RankedResult, Reranker

QUERY_IDS = ["3", "5", "36", "42", "49", "50", "51"]


@pytest.fixture(scope="module")
def reranker(trained_model: str) -> Reranker:
    return Reranker(trained_model, device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def distractors(scifact_corpus: dict[str, str]) -> list[str]:
    return list(scifact_corpus.values())[:30]


@pytest.mark.parametrize("query_id", QUERY_IDS)
def test_relevant_abstract_is_ranked_first(
    reranker: Reranker,
    query_id: str,
    distractors: list[str],
    scifact_corpus: dict[str, str],
    scifact_queries: dict[str, str],
    scifact_test_qrels: dict[str, set[str]],
) -> None:
    relevant = [scifact_corpus[doc_id] for doc_id in sorted(scifact_test_qrels[query_id])]
    documents = [*distractors[:15], *relevant, *distractors[15:]]
    relevant_positions = set(range(15, 15 + len(relevant)))

    ranking = reranker.rank(scifact_queries[query_id], documents, top_n=len(relevant))

    assert {result.index for result in ranking} == relevant_positions
    assert all(result.document == documents[result.index] for result in ranking)
    assert ranking[0].relevance_score > 0.5


def test_rank_returns_every_document_best_first_with_consistent_scores(
    reranker: Reranker, distractors: list[str]
) -> None:
    query = "AIRE is expressed in some skin tumors."
    ranking = reranker.rank(query, distractors)
    assert sorted(result.index for result in ranking) == list(range(len(distractors)))
    assert [r.score for r in ranking] == sorted((r.score for r in ranking), reverse=True)
    for result in ranking:
        assert isinstance(result, RankedResult)
        assert type(result.score) is float and type(result.relevance_score) is float
        assert 0.0 <= result.relevance_score <= 1.0
        # The model's activation is Identity: relevance is the sigmoid of the raw logit.
        assert result.relevance_score == pytest.approx(1 / (1 + math.exp(-result.score)), abs=1e-6)
    assert reranker.score(query, distractors) == [r.score for r in sorted(ranking, key=lambda r: r.index)]


@pytest.mark.slow
def test_threshold_applies_before_top_n(reranker: Reranker, distractors: list[str], scifact_corpus: dict) -> None:
    query = "ALDH1 expression is associated with poorer prognosis in breast cancer."
    everything = reranker.rank(query, distractors)
    threshold = (everything[2].relevance_score + everything[3].relevance_score) / 2
    kept = reranker.rank(query, distractors, top_n=10, score_threshold=threshold)
    assert [r.index for r in kept] == [r.index for r in everything[:3]]
    assert reranker.rank(query, distractors, top_n=2, score_threshold=threshold) == everything[:2]
    assert reranker.rank(query, distractors, score_threshold=1.0) == [r for r in everything if r.relevance_score >= 1.0]


def test_top_n_larger_than_input_returns_all(reranker: Reranker) -> None:
    assert len(reranker.rank("q", ["a", "b"], top_n=50)) == 2


def test_ties_keep_input_order(reranker: Reranker) -> None:
    documents = ["same text", "other text entirely", "same text", "same text"]
    ranking = reranker.rank("some query", documents)
    same = [r.index for r in ranking if r.document == "same text"]
    assert same == [0, 2, 3]
    assert len({r.score for r in ranking if r.document == "same text"}) == 1


def test_rank_many_equals_rank_per_query(reranker: Reranker, distractors: list[str]) -> None:
    queries = ["ADAR1 binds to Dicer to cleave pre-miRNA.", "AIRE is expressed in some skin tumors.", "empty"]
    per_query = [distractors[:12], distractors[5:20], []]
    together = reranker.rank_many(queries, per_query, top_n=5)
    separately = [reranker.rank(q, docs, top_n=5) for q, docs in zip(queries, per_query, strict=True)]
    assert [[r.index for r in ranking] for ranking in together] == [[r.index for r in s] for s in separately]
    for joint, alone in zip(together, separately, strict=True):
        for a, b in zip(joint, alone, strict=True):
            assert a.score == pytest.approx(b.score, abs=1e-4)
    assert together[2] == []


def test_rank_many_checks_lengths(reranker: Reranker) -> None:
    with pytest.raises(ValueError, match="2 queries but 1 document lists"):
        reranker.rank_many(["a", "b"], [["x"]])
    with pytest.raises(TypeError, match=r"documents_per_query\[1\]\[0\] must be a str, got int"):
        reranker.rank_many(["a", "b"], [["x"], [3]])
