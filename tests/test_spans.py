"""Evidence spans and passages: the characters of each document that earned its score, exact to the character.

Spans are checked against a reference built independently, from ``transformers``' own tokenizer offsets
(``return_offsets_mapping``) and the window rule written out here; ranking claims use the SciFact model.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.documents import Document
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode
from pydantic import ValidationError
from transformers import AutoTokenizer

from rerank_plugins import Reranker
from rerank_plugins.backend import PairScore, RerankBackend
from rerank_plugins.langchain import RerankCompressor
from rerank_plugins.llama_index import RerankPostprocessor
from rerank_plugins.scores import aggregate_windows
from rerank_plugins.windows import sentence_starts, sentence_windows, token_windows

QUERY = "Does vitamin B12 lower homocysteine?"
MAX_LENGTH = 48
TRICKY = [
    "Über Zellen: 日本語のテキスト。 Größere Moleküle — naïve café, ½ dose. " * 6,
    "Emoji 🧬🦠 in text 👩\u200d🔬 with skin tones 👍🏽 and flags 🇫🇷. " * 8,
    "Cells divide. " * 60,  # the same sentence over and over: a span must point at its own window
    "  Leading and trailing white space, tabs\tand\nnew lines.  \n" * 10,
    "Short.",
    "",
]


def reference_spans(
    tokenizer: Any, query: str, document: str, window: bool, max_length: int = MAX_LENGTH
) -> set[tuple[int, int]]:
    """Every span the core may report for ``document``: from transformers' offsets and the window rule."""
    offsets = tokenizer(document, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    query_tokens = len(tokenizer(query, add_special_tokens=False)["input_ids"])
    budget = max_length - tokenizer.num_special_tokens_to_add(pair=True) - query_tokens
    if len(offsets) <= budget:
        return {(0, len(document))}
    step = budget - budget // 2
    starts = range(0, len(offsets) - budget + step, step) if window else [0]
    spans = set()
    for start in starts:
        end = min(start + budget, len(offsets))
        first, last = offsets[start][0], offsets[end - 1][1]
        text = document[first:last]
        first += len(text) - len(text.lstrip())
        spans.add((first, first + len(text.strip())))
    return spans


@pytest.mark.parametrize("long_documents", ["truncate", "window"])
def test_spans_equal_transformers_offsets_for_multibyte_emoji_and_repeated_text(
    random_model: str, long_documents: str
) -> None:
    tokenizer = AutoTokenizer.from_pretrained(random_model)
    core = Reranker(random_model, max_length=MAX_LENGTH, long_documents=long_documents)  # type: ignore[arg-type]
    for result in core.rank(QUERY, TRICKY):
        document = TRICKY[result.index]
        assert result.span in reference_spans(tokenizer, QUERY, document, long_documents == "window")
        assert result.passage == document[slice(*result.span)]
        if result.truncated_tokens:  # a cut shows as a span shorter than the document
            assert result.span[0] == len(document) - len(document.lstrip()) and result.span[1] < len(document.rstrip())
    repeated = next(r for r in core.rank(QUERY, [TRICKY[2]]))
    assert long_documents == "truncate" or repeated.windows > 1


@settings(max_examples=25, deadline=None)
@given(
    text=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=300),
    long_documents=st.sampled_from(["truncate", "window"]),
)
def test_spans_of_any_text_equal_the_reference(random_model: str, text: str, long_documents: str) -> None:
    """Any unicode at all (combining marks, controls, scripts without spaces): the span is one the reference gives."""
    core = _core(random_model, long_documents)
    (result,) = core.rank(QUERY, [text])
    expected = reference_spans(_tokenizer(random_model), QUERY, text, long_documents == "window")
    assert result.span in expected


_CORES: dict[tuple[str, str], Reranker] = {}


def _core(model: str, long_documents: str) -> Reranker:
    key = (model, long_documents)
    if key not in _CORES:
        _CORES[key] = Reranker(model, max_length=MAX_LENGTH, long_documents=long_documents)  # type: ignore[arg-type]
    return _CORES[key]


@functools.lru_cache(maxsize=2)
def _tokenizer(model: str) -> Any:
    return AutoTokenizer.from_pretrained(model)


def test_the_span_is_the_best_window_and_finds_the_relevant_abstract(
    trained_model: str, scifact_corpus: dict[str, str], claim: str, relevant_id: str
) -> None:
    """A relevant abstract chained between unrelated ones: the winning window lies mostly inside it."""
    others = [text for doc_id, text in list(scifact_corpus.items())[:40] if doc_id != relevant_id]
    relevant = scifact_corpus[relevant_id]
    for before in (0, 1, 2):
        chained = " ".join([*others[before * 3 : before * 3 + before], relevant, *others[10:12]])
        start = chained.index(relevant)
        core = Reranker(trained_model, precision="fp32", max_length=128, long_documents="window")
        (result,) = core.rank(claim, [chained])
        inside = max(0, min(result.span[1], start + len(relevant)) - max(result.span[0], start))
        assert inside >= 0.5 * (result.span[1] - result.span[0]), (before, result.span, start)


def test_best_window_is_the_highest_margin_first_on_ties_for_either_aggregation() -> None:
    margins = np.array([0.1, 0.9, 0.9, -1.0, 5.0, 2.0], dtype=np.float32)
    owners = np.array([0, 0, 0, 1, 2, 2])
    for how in ("max", "mean"):
        _, windows, best = aggregate_windows(margins, owners, 3, how)
        assert windows.tolist() == [3, 1, 2] and best.tolist() == [1, 3, 4]


def test_sentence_starts_rule() -> None:
    text = 'One. Two! "Three?" Four, e.g. five. 3.5 mg (Six.) Seven\nEight 第一句。第二句。'
    starts = sentence_starts(text)
    assert [text[s : s + 5] for s in starts] == ["Two! ", '"Thre', "Four,", "3.5 m", "Seven", "Eight", "第二句。"]
    assert sentence_starts("No boundary here") == [] and sentence_starts("End.") == []


@settings(max_examples=300, deadline=None)
@given(
    length=st.integers(1, 400),
    budget=st.integers(4, 64),
    overlap=st.integers(0, 63),
    boundaries=st.lists(st.integers(1, 399), max_size=40),
)
def test_sentence_windows_cover_every_token_and_snap_near_boundaries(
    length: int, budget: int, overlap: int, boundaries: list[int]
) -> None:
    step = budget - min(overlap, budget - 1)
    found = sorted({b for b in boundaries if b < length})
    windows = sentence_windows(length, budget, step, found)
    assert windows[0][0] == 0 and sum(windows[-1]) == length
    assert all(0 < count <= budget for _, count in windows)
    for (start, count), (next_start, _) in zip(windows, windows[1:], strict=False):
        assert start < next_start <= start + count  # progress, and no token skipped
    if not found:
        assert windows == token_windows(length, budget, step)
    snap = min(32, budget // 4)
    for (start, count), (next_start, _) in zip(windows, windows[1:], strict=False):
        nominal = start + step
        reachable = [b for b in found if start < b <= start + count and abs(b - nominal) <= snap]
        assert next_start in reachable if reachable else next_start == min(nominal, start + count)


def test_sentence_windows_read_from_sentence_starts(trained_model: str, scifact_corpus: dict[str, str]) -> None:
    chained = [" ".join(list(scifact_corpus.values())[i : i + 3]) for i in range(0, 30, 3)]
    starts_on_sentence = {}
    for boundaries in ("tokens", "sentence"):
        core = Reranker(trained_model, max_length=128, long_documents="window", window_boundaries=boundaries)
        results = core.rank("Vitamin D supplementation reduces fractures.", chained)
        starts_on_sentence[boundaries] = np.mean(
            [r.span[0] == 0 or r.span[0] in sentence_starts(r.document) for r in results]
        )
    assert starts_on_sentence["sentence"] >= 0.8 > starts_on_sentence["tokens"], starts_on_sentence


def test_passage_spans_grow_by_context_and_hold_to_max_tokens(random_model: str) -> None:
    tokenizer = AutoTokenizer.from_pretrained(random_model)
    core = Reranker(random_model, max_length=MAX_LENGTH, long_documents="window")
    ranking = core.rank(QUERY, TRICKY[:4])

    def tokens(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    assert core.passage_spans(ranking) == [r.span for r in ranking]
    for result, wide, short in zip(
        ranking, core.passage_spans(ranking, context_tokens=5), core.passage_spans(ranking, max_tokens=7), strict=True
    ):
        assert wide[0] <= result.span[0] and wide[1] >= result.span[1]
        grown = tokens(result.document[slice(*wide)]) - tokens(result.passage)
        assert grown == 10 or wide[0] == 0 or wide[1] == len(result.document.rstrip())
        assert short[0] == result.span[0] and 1 <= tokens(result.document[slice(*short)]) <= 8
    with pytest.raises(ValueError, match="context_tokens must be >= 0"):
        core.passage_spans(ranking, context_tokens=-1)
    with pytest.raises(TypeError, match="max_tokens must be an int"):
        core.passage_spans(ranking, max_tokens=2.5)  # type: ignore[arg-type]


class _NoSpans(RerankBackend):
    """A scorer that says nothing of where its evidence is (as TEI's API does not)."""

    model_name = "no-spans"

    def _score_pairs(self, pairs: list[tuple[str, str]]) -> list[PairScore]:
        return [PairScore(float(len(text)), 0.5) for _, text in pairs]

    def options(self) -> dict[str, Any]:
        return {}


def test_passages_from_a_scorer_without_spans_are_refused_by_name() -> None:
    ranking = _NoSpans().rank("q", ["a b", "c"])
    assert ranking[0].passage == "a b"  # no span: the passage is the whole document
    with pytest.raises(ValueError, match="gave no evidence span for document 0"):
        _NoSpans().passage_spans(ranking)


def _long_documents(scifact_corpus: dict[str, str]) -> list[Document]:
    texts = list(scifact_corpus.values())
    return [
        Document(page_content=" ".join(texts[i : i + 3]), id=f"chain-{i}", metadata={"source": i})
        for i in range(0, 24, 3)
    ]


@pytest.mark.slow
def test_langchain_compressor_returns_passages_and_leaves_its_input_alone(
    trained_model: str, scifact_corpus: dict[str, str]
) -> None:
    documents = _long_documents(scifact_corpus)
    before = copy.deepcopy(documents)
    core = Reranker(trained_model, max_length=128, long_documents="window", window_boundaries="sentence")
    whole = RerankCompressor(reranker=core, top_n=3).compress_documents(documents, "Aspirin and colorectal cancer.")
    compressor = RerankCompressor(reranker=core, top_n=3, compress="passage", passage_context=4)
    passages = compressor.compress_documents(documents, "Aspirin and colorectal cancer.")
    assert documents == before
    assert [d.id for d in passages] == [d.id for d in whole]  # compression does not change the ranking
    for passage, full in zip(passages, whole, strict=True):
        start, end = passage.metadata["rerank_span"]
        assert passage.page_content == full.page_content[start:end]
        assert len(passage.page_content) < len(full.page_content) == passage.metadata["rerank_text_length"]
        assert passage.metadata["rerank_document_id"] == full.id
        assert passage.metadata["source"] == full.metadata["source"]
    with pytest.raises(ValidationError, match="set compress='passage' too"):
        RerankCompressor(reranker=core, passage_context=4)
    data = compressor.model_dump()  # LangChain keeps a compressor's settings as its pydantic fields
    assert {data[k] for k in ("compress", "window_boundaries", "long_documents")} == {"passage", "sentence", "window"}
    restored = RerankCompressor(**data)
    assert restored.core.options() == core.options()
    assert restored.compress_documents(documents, "Aspirin and colorectal cancer.") == passages


async def test_langchain_async_passages_equal_sync(trained_model: str, scifact_corpus: dict[str, str]) -> None:
    documents = _long_documents(scifact_corpus)
    core = Reranker(trained_model, max_length=128, long_documents="window")
    compressor = RerankCompressor(reranker=core, top_n=2, compress="passage", max_passage_tokens=30)
    sync = compressor.compress_documents(documents, "Obesity and insulin resistance.")
    assert await compressor.acompress_documents(documents, "Obesity and insulin resistance.") == sync


def test_llama_index_postprocessor_returns_passage_nodes_and_round_trips(
    trained_model: str, scifact_corpus: dict[str, str]
) -> None:
    texts = [d.page_content for d in _long_documents(scifact_corpus)]
    nodes = [
        NodeWithScore(
            node=TextNode(
                text=text, id_=f"n{i}", metadata={"journal": "x"}, start_char_idx=10, end_char_idx=10 + len(text)
            ),
            score=0.5,
        )
        for i, text in enumerate(texts)
    ]
    before = copy.deepcopy(nodes)
    postprocessor = RerankPostprocessor(
        model=trained_model,
        top_n=3,
        max_length=128,
        long_documents="window",
        window_boundaries="sentence",
        window_overlap=16,
        compress="passage",
        passage_context=2,
        max_passage_tokens=60,
    )
    reranked = postprocessor.postprocess_nodes(nodes, query_bundle=QueryBundle("Statins lower cholesterol."))
    assert [n.model_dump() for n in nodes] == [n.model_dump() for n in before]
    originals = {n.node.node_id: n.node for n in nodes}
    for result in reranked:
        whole = originals[result.node.node_id]  # the same id: the whole node stays reachable by it
        start, end = result.node.metadata["rerank_span"]
        assert result.node.get_content() == whole.get_content()[start:end] != whole.get_content()
        assert result.node.metadata["rerank_text_length"] == len(whole.get_content())
        assert (result.node.start_char_idx, result.node.end_char_idx) == (10 + start, 10 + end)
        assert "rerank_span" not in result.node.get_content(metadata_mode=MetadataMode.LLM)
    data = postprocessor.to_dict()
    restored = RerankPostprocessor.from_dict(data)
    assert restored.to_dict() == data and restored.core.options() == postprocessor.core.options()
    assert {data[k] for k in ("compress", "window_boundaries")} == {"passage", "sentence"}
    again = restored.postprocess_nodes(nodes, query_bundle=QueryBundle("Statins lower cholesterol."))
    assert [(n.node.node_id, n.node.get_content()) for n in again] == [
        (n.node.node_id, n.node.get_content()) for n in reranked
    ]
