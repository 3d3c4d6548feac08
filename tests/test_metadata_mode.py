"""metadata_mode: both adapters score the same text for the same document, with the real SciFact cross-encoder."""

from __future__ import annotations

import json

import pytest
from langchain_core.documents import Document
from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode

from rerank_plugins import Reranker
from rerank_plugins.langchain import RerankCompressor
from rerank_plugins.llama_index import RerankPostprocessor
from tests.paths import SCIFACT

MODES = ("none", "embed", "llm", "all")


@pytest.fixture(scope="module")
def abstracts(scifact_slice: dict[str, str], relevant_id: str) -> dict[str, tuple[str, str]]:
    """id -> (title, abstract) of the claim's relevant abstract and seven others, read apart from the corpus."""
    wanted = {relevant_id, *list(scifact_slice)[100:107]}
    rows = {}
    with open(SCIFACT / "corpus.jsonl", encoding="utf-8") as lines:
        for row in map(json.loads, lines):
            if row["_id"] in wanted:
                rows[row["_id"]] = (row["title"], row["text"])
    assert len(rows) == 8
    return rows


def _documents(abstracts: dict[str, tuple[str, str]]) -> list[Document]:
    return [
        Document(page_content=text, id=doc_id, metadata={"doc_id": doc_id, "title": title})
        for doc_id, (title, text) in abstracts.items()
    ]


def _nodes(abstracts: dict[str, tuple[str, str]], **fields: object) -> list[NodeWithScore]:
    return [
        NodeWithScore(node=TextNode(text=text, id_=doc_id, metadata={"doc_id": doc_id, "title": title}, **fields))
        for doc_id, (title, text) in abstracts.items()
    ]


def test_a_document_and_a_node_with_the_same_text_and_metadata_score_the_same_in_every_mode(
    trained_model: str, abstracts: dict[str, tuple[str, str]], claim: str, relevant_id: str
) -> None:
    scores = {}
    for mode in MODES:
        core = Reranker(trained_model, precision="fp32", metadata_mode=mode)  # the model is shared, loaded once
        documents = RerankCompressor(reranker=core, top_n=None).compress_documents(_documents(abstracts), claim)
        nodes = RerankPostprocessor(reranker=core, top_n=None).postprocess_nodes(_nodes(abstracts), query_str=claim)
        assert [d.id for d in documents] == [n.node.node_id for n in nodes]
        assert [d.metadata["relevance_score"] for d in documents] == [n.score for n in nodes], mode
        assert documents[0].id == relevant_id
        scores[mode] = {d.id: d.metadata["relevance_score"] for d in documents}
    assert scores["embed"] == scores["llm"] == scores["all"]  # no excluded keys: the three modes read the same
    assert all(scores["none"][doc_id] != scores["all"][doc_id] for doc_id in abstracts)  # the option acts

    # "embed" is LlamaIndex's own text for MetadataMode.EMBED, and "none" the text alone
    texts = [n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in _nodes(abstracts)]
    assert "title: " in texts[0] and "doc_id: " in texts[0]
    by_core = Reranker(trained_model, precision="fp32").rank(claim, texts)
    assert {list(abstracts)[r.index]: r.relevance_score for r in by_core} == scores["embed"]
    plain = Reranker(trained_model, precision="fp32").rank(claim, [text for _, text in abstracts.values()])
    assert {list(abstracts)[r.index]: r.relevance_score for r in plain} == scores["none"]


def test_llama_index_modes_leave_out_the_keys_the_node_excludes(
    trained_model: str, abstracts: dict[str, tuple[str, str]], claim: str
) -> None:
    hidden = _nodes(abstracts, excluded_embed_metadata_keys=["doc_id", "title"], excluded_llm_metadata_keys=["doc_id"])

    def scores(mode: str, nodes: list[NodeWithScore]) -> list[float | None]:
        postprocessor = RerankPostprocessor(model=trained_model, precision="fp32", metadata_mode=mode, top_n=None)
        return [n.score for n in sorted(postprocessor.postprocess_nodes(nodes, query_str=claim), key=lambda n: n.id_)]

    assert scores("embed", hidden) == scores("none", hidden)  # every key excluded from the embed text
    assert scores("llm", hidden) != scores("all", hidden)  # doc_id left out for the LLM text only
    assert scores("all", hidden) == scores("all", _nodes(abstracts))


def test_reranking_twice_gives_the_same_scores(
    trained_model: str, abstracts: dict[str, tuple[str, str]], claim: str
) -> None:
    core = Reranker(trained_model, precision="fp32", metadata_mode="all")
    compressor = RerankCompressor(reranker=core, top_n=None)
    once = compressor.compress_documents(_documents(abstracts), claim)
    assert "rerank_score" in once[0].metadata and "retrieval_rank" in once[0].metadata
    twice = compressor.compress_documents(once, claim)
    assert [d.metadata["relevance_score"] for d in twice] == [d.metadata["relevance_score"] for d in once]

    postprocessor = RerankPostprocessor(reranker=core, top_n=None, keep_retrieval_score=True)
    nodes = [NodeWithScore(node=n.node, score=0.5) for n in _nodes(abstracts)]
    first = postprocessor.postprocess_nodes(nodes, query_str=claim)
    assert "retrieval_score" in first[0].node.metadata
    # the reranker's keys are never read, not even in mode "all": those it wrote, and ones copied in by hand
    extra = {"rerank_p_any_relevant": 0.9, "relevance_score": 0.1}
    copied = [
        NodeWithScore(node=n.node.model_copy(update={"metadata": {**n.node.metadata, **extra}}), score=n.score)
        for n in first
    ]
    second = postprocessor.postprocess_nodes(copied, query_str=claim)
    assert [n.score for n in second] == [n.score for n in first]


def test_passage_of_a_node_with_metadata_whose_text_ends_in_white_space(
    trained_model: str, scifact_corpus: dict[str, str], claim: str, relevant_id: str
) -> None:
    """LlamaIndex strips the formatted text, so the node text, ending in white space, is not in it verbatim:
    the passage must come from where the text starts in what was scored, not from searching for it."""
    others = [doc_id for doc_id in list(scifact_corpus)[:5] if doc_id != relevant_id]
    parts = [scifact_corpus[doc_id] for doc_id in [*others[:3], relevant_id, *others[3:]]]
    text = "\n\n".join(parts) + "\n  "
    relevant_start = text.index(scifact_corpus[relevant_id])
    relevant_end = relevant_start + len(scifact_corpus[relevant_id])
    metadata = {"doc_id": "joined", "title": "Five abstracts"}
    node = TextNode(text=text, id_="joined", metadata=metadata, start_char_idx=40)
    postprocessor = RerankPostprocessor(
        model=trained_model,
        precision="fp32",
        metadata_mode="embed",
        compress="passage",
        long_documents="window",
        top_n=1,
    )

    (result,) = postprocessor.postprocess_nodes([NodeWithScore(node=node, score=0.5)], query_str=claim)

    start, end = result.node.metadata["rerank_span"]
    assert result.node.metadata["rerank_windows"] > 1 and result.node.metadata["rerank_text_length"] == len(text)
    assert 0 <= start < end <= len(text) and end - start < len(text)  # a strict part, not the whole text
    assert result.node.text == text[start:end]
    assert max(start, relevant_start) < min(end, relevant_end)  # the evidence lies in the relevant abstract
    assert (result.node.start_char_idx, result.node.end_char_idx) == (40 + start, 40 + end)
    assert node.text == text  # the caller's node is untouched

    compressor = RerankCompressor(reranker=postprocessor.core, compress="passage", top_n=1)
    (document,) = compressor.compress_documents([Document(page_content=text, metadata=node.metadata)], claim)
    assert document.metadata["rerank_span"] == [start, end] and document.page_content == text[start:end]
