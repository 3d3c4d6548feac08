"""Batch assembly without a device: flat units, vectorised planning, token budgets and batch layouts.

The GPU pipeline depends on these rules; they are pure numpy, so they are proven here on the CPU.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

from rerank_plugins.batches import packed_arrays, padded_arrays, plan_batches
from rerank_plugins.encoding import PairEncoder, _document_spans, plan_chunk
from rerank_plugins.units import ChunkPlan, Units, ragged_arange, ragged_ranges
from rerank_plugins.windows import token_windows, window_step


@pytest.fixture(scope="module")
def encoder(trained_model: str) -> PairEncoder:
    return PairEncoder(AutoTokenizer.from_pretrained(trained_model))


@pytest.fixture(scope="module")
def texts(scifact_corpus: dict[str, str]) -> list[str]:
    abstracts = list(scifact_corpus.values())[:12]
    return ["", "T cells.", "Über Zellen: 日本語 text.", *abstracts, "cells " * 700]


def test_ragged_helpers() -> None:
    assert ragged_arange(np.array([2, 0, 3])).tolist() == [0, 1, 0, 1, 2]
    assert ragged_ranges(np.array([10, 5, 0]), np.array([2, 0, 3])).tolist() == [10, 11, 0, 1, 2]


WORDS = ("cells", "grow", "fast", "blood", "die", "protein", "gene")
"""Words the test tokenizer reads as one token each, so a text's token count is its word count (stops too)."""


def _assert_same_plans(
    encoder: PairEncoder,
    pairs: list[tuple[str, str]],
    max_length: int,
    window: bool,
    overlap: int | None,
    sentences: bool,
) -> ChunkPlan:
    """``plan_chunk`` builds, in numpy, exactly the units ``fit_pair`` builds one pair at a time (returned)."""
    vectorised = encoder.plan_chunk(pairs, max_length, window, overlap, sentences=sentences, spans=True)
    reference = plan_chunk(encoder.plans(pairs, max_length, window, overlap, sentences=sentences))

    assert len(vectorised.units) == len(reference.units)
    for name in ("ids", "types", "lengths"):
        assert np.array_equal(getattr(vectorised.units, name), getattr(reference.units, name)), name
    assert np.array_equal(vectorised.owners, reference.owners)
    assert np.array_equal(vectorised.truncated_tokens, reference.truncated_tokens)
    assert np.array_equal(vectorised.query_tokens, reference.query_tokens)
    assert vectorised.units.lengths.max() <= max_length
    return vectorised


@pytest.mark.parametrize("sentences", [False, True])
@pytest.mark.parametrize(
    ("max_length", "window", "overlap"),
    [(512, False, None), (64, False, None), (64, True, None), (64, True, 10), (40, True, 0), (12, True, 50)],
)
def test_vectorised_plans_equal_pair_by_pair_plans(
    encoder: PairEncoder, texts: list[str], max_length: int, window: bool, overlap: int | None, sentences: bool
) -> None:
    """On real texts (empty, non-ASCII, abstracts, very long), sentence-aware windows included."""
    long_query = " ".join(texts[4].split()[:80])
    pairs = [(query, text) for query in ("Does B12 lower homocysteine?", long_query, "") for text in texts]

    plan = _assert_same_plans(encoder, pairs, max_length, window, overlap, sentences)
    assert len(plan.units) > len(pairs) or not window  # the long texts were windowed


_sentence = st.lists(st.sampled_from(WORDS), min_size=1, max_size=15).map(
    lambda words: " ".join(words).capitalize() + "."
)
_document = st.lists(_sentence, max_size=12).map(" ".join)
_query = st.lists(st.sampled_from(WORDS), max_size=60).map(" ".join)


@settings(max_examples=120, deadline=None)
@given(
    queries=st.lists(_query, min_size=1, max_size=2),
    documents=st.lists(_document, min_size=1, max_size=4),
    room=st.integers(1, 100),
    window=st.booleans(),
    overlap=st.one_of(st.none(), st.integers(0, 120)),
    sentences=st.booleans(),
)
def test_vectorised_plans_equal_pair_by_pair_plans_for_any_lengths(
    encoder: PairEncoder,
    queries: list[str],
    documents: list[str],
    room: int,
    window: bool,
    overlap: int | None,
    sentences: bool,
) -> None:
    """Any query and document token lengths (0 to ~190), any ``max_length`` (one token of room up), window or
    truncate, any overlap, token or sentence boundaries: the two planners agree."""
    pairs = [(query, document) for query in queries for document in documents]
    _assert_same_plans(encoder, pairs, encoder.special_count + room, window, overlap, sentences)


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(st.tuples(st.integers(0, 5000), st.integers(1, 600)), min_size=1, max_size=20),
    window=st.booleans(),
    overlap=st.one_of(st.none(), st.integers(0, 700)),
)
def test_vectorised_window_rule_equals_the_scalar_one(
    rows: list[tuple[int, int]], window: bool, overlap: int | None
) -> None:
    """``_document_spans`` (numpy) cuts or windows each document exactly as the scalar rule of ``fit_pair``:
    one piece of ``budget`` tokens and the rest cut, or ``token_windows`` stepping by ``window_step``."""
    full = np.array([length for length, _ in rows], dtype=np.int64)
    budget = np.array([room for _, room in rows], dtype=np.int64)
    owners, starts, lengths, truncated = _document_spans(full, budget, window, overlap)

    expected_pieces: list[tuple[int, int, int]] = []
    expected_truncated: list[int] = []
    for pair, (length, room) in enumerate(rows):
        if length <= room:
            pieces, cut = [(0, length)], 0
        elif not window:
            pieces, cut = [(0, room)], length - room
        else:
            pieces, cut = token_windows(length, room, window_step(room, overlap)), 0
        expected_pieces.extend((pair, start, count) for start, count in pieces)
        expected_truncated.append(cut)
    assert list(zip(owners.tolist(), starts.tolist(), lengths.tolist(), strict=True)) == expected_pieces
    assert truncated.tolist() == expected_truncated


def test_units_round_trip_and_sort_stably() -> None:
    given_units = [([1, 2], [0, 0]), ([3, 4, 5], [0, 1, 1]), ([6], [0]), ([7, 8], [1, 1])]
    units = Units.from_units(given_units)
    assert [units.unit(index) for index in range(len(units))] == given_units

    order, ordered = units.sorted_by_length()
    assert order.tolist() == [1, 0, 3, 2]  # longest first, ties in input order
    assert [ordered.unit(index) for index in range(len(ordered))] == [given_units[i] for i in order]


def _check_runs(lengths: list[int], runs: list[tuple[int, int]], batch_size: int, budget: int | None, packed: bool):  # type: ignore[no-untyped-def]
    assert runs[0][0] == 0 and runs[-1][1] == len(lengths)
    assert all(end == start for (_, end), (start, _) in zip(runs, runs[1:], strict=False))
    for start, end in runs:
        count = end - start
        cost = sum(lengths[start:end]) if packed else count * lengths[start]
        assert 1 <= count <= batch_size
        assert budget is None or count == 1 or cost <= budget
        if end < len(lengths):  # a run ends only where the next unit would break a limit
            grown = sum(lengths[start : end + 1]) if packed else (count + 1) * lengths[start]
            assert count == batch_size or budget is not None and grown > budget


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 600), min_size=1, max_size=80),
    batch_size=st.integers(1, 40),
    budget=st.one_of(st.none(), st.integers(1, 5000)),
    packed=st.booleans(),
)
def test_batches_respect_count_and_token_budget(
    lengths: list[int], batch_size: int, budget: int | None, packed: bool
) -> None:
    lengths.sort(reverse=True)
    runs = plan_batches(np.array(lengths), batch_size, budget, packed=packed)
    _check_runs(lengths, runs, batch_size, budget, packed)


def test_token_budget_makes_long_batches_small_and_short_ones_large() -> None:
    lengths = np.array([512] * 8 + [64] * 100)
    runs = plan_batches(lengths, batch_size=512, max_tokens=2048)
    assert [end - start for start, end in runs] == [4, 4, 32, 32, 32, 4]
    packed = plan_batches(np.array([300, 200, 100, 50, 50]), batch_size=512, max_tokens=500, packed=True)
    assert packed == [(0, 2), (2, 5)]


def test_max_padding_and_rounded_widths() -> None:
    lengths = np.array([200, 190, 100, 95])
    assert plan_batches(lengths, 8, max_padding=50) == [(0, 2), (2, 4)]
    rounded = plan_batches(np.array([17, 16, 15]), 8, max_tokens=64, width=lambda n: -(-n // 16) * 16)
    assert rounded == [(0, 2), (2, 3)]  # rows are 32 wide, so two fit in 64 tokens


def test_padded_and_packed_layouts_hold_the_units() -> None:
    given_units = [([5, 6, 7, 8], [0, 0, 1, 1]), ([1, 2, 3], [0, 1, 1]), ([9, 9, 9], [0, 0, 0]), ([4], [1])]
    units = Units.from_units(given_units)

    padded = padded_arrays(units, 1, 4, width=4, pad_id=0)
    assert padded.input_ids.tolist() == [[1, 2, 3, 0], [9, 9, 9, 0], [4, 0, 0, 0]]
    assert padded.token_type_ids.tolist() == [[0, 1, 1, 0], [0, 0, 0, 0], [1, 0, 0, 0]]
    assert padded.attention_mask.tolist() == [[1, 1, 1, 0], [1, 1, 1, 0], [1, 0, 0, 0]]

    packed = packed_arrays(units, 1, 4)
    assert packed.input_ids.tolist() == [1, 2, 3, 9, 9, 9, 4]
    assert packed.token_type_ids.tolist() == [0, 1, 1, 0, 0, 0, 1]
    assert packed.position_ids.tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert packed.cu_seqlens.tolist() == [0, 3, 6, 7] and packed.cu_seqlens.dtype == np.int32
    assert packed.max_seqlen == 3


def test_windows_terminate_when_the_query_fills_almost_all_of_max_length(encoder: PairEncoder) -> None:
    """With 3 tokens of room, a long query used to take all of it: windows of 0 tokens never advanced."""
    max_length = encoder.special_count + 3
    pairs = [("a query of many words", "a document of several words that must be windowed")]
    for plan in (
        encoder.plan_chunk(pairs, max_length, True, None),
        plan_chunk(encoder.plans(pairs, max_length, True, None)),
    ):
        assert plan.units.lengths.max() <= max_length
        assert len(plan.units) > 1  # the document is read in windows of at least one token
