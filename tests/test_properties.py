"""Property tests (hypothesis) on the core, with the seeded random-weight model and fp32."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rerank_plugins import Reranker

WORDS = st.sampled_from(["cell", "protein", "vitamin", "risk", "dicer", "the", "of", "ADAR1", "🙂", "tumour", "x"])
TEXT = st.lists(WORDS, min_size=0, max_size=12).map(" ".join)
DOCS = st.lists(TEXT, min_size=1, max_size=10)
QUERY = st.lists(WORDS, min_size=1, max_size=12).map(" ".join)  # never blank: rank refuses an empty query
PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def core(random_model: str) -> Reranker:
    return Reranker(random_model, precision="fp32", batch_size=3)


def _by_text(reranker: Reranker, query: str, documents: list[str]) -> dict[str, float]:
    return dict(zip(documents, reranker.score(query, documents), strict=True))


@PROPERTY
@given(query=QUERY, documents=DOCS, data=st.data())
def test_permuting_documents_does_not_change_the_ranking(core: Reranker, query, documents, data) -> None:
    permutation = data.draw(st.permutations(list(range(len(documents)))))
    shuffled = [documents[i] for i in permutation]
    original = core.rank(query, documents)
    permuted = core.rank(query, shuffled)
    assert [documents[r.index] for r in original] != [] and len(permuted) == len(original)
    for a, b in zip(original, permuted, strict=True):  # same order up to near-exact ties
        assert a.document == b.document or abs(a.score - b.score) <= TOLERANCE
        assert a.score == pytest.approx(b.score, abs=TOLERANCE)


@PROPERTY
@given(query=QUERY, documents=DOCS, top_n=st.integers(1, 12), threshold=st.none() | st.floats(0, 1))
def test_result_is_a_subset_of_the_input(core: Reranker, query, documents, top_n, threshold) -> None:
    ranking = core.rank(query, documents, top_n=top_n, score_threshold=threshold)
    assert len(ranking) <= min(top_n, len(documents))
    assert len({r.index for r in ranking}) == len(ranking)
    assert all(documents[r.index] == r.document for r in ranking)
    assert all(threshold is None or r.relevance_score >= threshold for r in ranking)


@PROPERTY
@given(query=QUERY, documents=DOCS, top_n=st.integers(1, 11))
def test_top_n_is_monotone(core: Reranker, query, documents, top_n) -> None:
    smaller = core.rank(query, documents, top_n=top_n)
    larger = core.rank(query, documents, top_n=top_n + 1)
    assert [r.index for r in larger[: len(smaller)]] == [r.index for r in smaller]


@PROPERTY
@given(query=QUERY, documents=DOCS, batch_size=st.integers(1, 12))
def test_scores_do_not_depend_on_batch_size(random_model: str, core: Reranker, query, documents, batch_size) -> None:
    other = Reranker(random_model, precision="fp32", batch_size=batch_size)
    assert other.score(query, documents) == pytest.approx(core.score(query, documents), abs=TOLERANCE)


@PROPERTY
@given(query=QUERY, documents=DOCS, data=st.data())
def test_deduplicated_and_one_by_one_calls_agree(core: Reranker, query, documents, data) -> None:
    repeats = data.draw(st.lists(st.sampled_from(documents), max_size=6))
    with_duplicates = documents + repeats
    together = _by_text(core, query, with_duplicates)
    for text in set(with_duplicates):
        assert together[text] == pytest.approx(core.score(query, [text])[0], abs=TOLERANCE)
