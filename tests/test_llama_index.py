"""The LlamaIndex adapter inside real query engines, with the real SciFact-trained cross-encoder."""

from __future__ import annotations

import copy
import subprocess
import sys
from typing import Any

import pytest
from llama_index.core import VectorStoreIndex
from llama_index.core.callbacks import CallbackManager, CBEventType, LlamaDebugHandler
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode
from llama_index.embeddings.huggingface import HuggingFaceEmbedding

from rerank_plugins import Reranker
from rerank_plugins.llama_index import RerankPostprocessor, RerankVerdictEvent


@pytest.fixture(scope="module")
def index(bi_encoder_path: str, scifact_slice: dict[str, str], scifact_slice_vectors: Any) -> VectorStoreIndex:
    """The abstracts with the embeddings the FAISS tests share (same bi-encoder); queries are embedded by
    LlamaIndex's own ``HuggingFaceEmbedding``."""
    embed_model = HuggingFaceEmbedding(model_name=bi_encoder_path, device="cpu")
    nodes = [
        TextNode(text=text, id_=doc_id, metadata={"doc_id": doc_id}, embedding=vector.tolist())
        for (doc_id, text), vector in zip(scifact_slice.items(), scifact_slice_vectors, strict=True)
    ]
    return VectorStoreIndex(nodes, embed_model=embed_model)


def _check_reranked(nodes: list[NodeWithScore], relevant_id: str, count: int) -> None:
    assert len(nodes) == count
    assert nodes[0].node.node_id == relevant_id
    scores = [node.score for node in nodes]
    assert all(type(score) is float and 0.0 <= score <= 1.0 for score in scores)
    assert scores == sorted(scores, reverse=True) and scores[0] > 0.5


def test_query_engine_returns_reranked_source_nodes(index, core, claim, relevant_id) -> None:
    retrieved = index.as_retriever(similarity_top_k=10).retrieve(claim)
    assert [n.node.node_id for n in retrieved].index(relevant_id) > 0  # the bi-encoder alone misses it
    engine = index.as_query_engine(
        similarity_top_k=10, node_postprocessors=[RerankPostprocessor(reranker=core, top_n=3)], llm=MockLLM()
    )

    _check_reranked(engine.query(claim).source_nodes, relevant_id, 3)


async def test_query_engine_aquery_returns_reranked_source_nodes(index, core, claim, relevant_id) -> None:
    engine = index.as_query_engine(
        similarity_top_k=10, node_postprocessors=[RerankPostprocessor(reranker=core, top_n=2)], llm=MockLLM()
    )
    response = await engine.aquery(claim)
    _check_reranked(response.source_nodes, relevant_id, 2)


def test_retriever_query_engine_with_the_postprocessor(index, core, claim, relevant_id) -> None:
    engine = RetrieverQueryEngine.from_args(
        retriever=index.as_retriever(similarity_top_k=10),
        node_postprocessors=[RerankPostprocessor(reranker=core, top_n=4)],
        llm=MockLLM(),
    )
    _check_reranked(engine.query(claim).source_nodes, relevant_id, 4)


class RerankEvents(BaseEventHandler):
    """Collects the rerank events the dispatcher sends."""

    events: list[Any] = []

    def handle(self, event: Any, **kwargs: Any) -> None:
        if isinstance(event, (ReRankStartEvent, ReRankEndEvent)):
            self.events.append(event)


def test_dispatcher_and_legacy_callbacks_see_the_rerank(index, core, claim, relevant_id) -> None:
    handler = RerankEvents(events=[])
    root = get_dispatcher()
    root.add_event_handler(handler)
    debug = LlamaDebugHandler()
    postprocessor = RerankPostprocessor(reranker=core, top_n=2, callback_manager=CallbackManager([debug]))
    nodes = index.as_retriever(similarity_top_k=10).retrieve(claim)
    try:
        reranked = postprocessor.postprocess_nodes(nodes, query_str=claim)
    finally:
        root.event_handlers.remove(handler)

    start, end = handler.events
    assert isinstance(start, ReRankStartEvent) and isinstance(end, ReRankEndEvent)
    assert [n.node.node_id for n in start.nodes] == [n.node.node_id for n in nodes]
    assert start.top_n == 2 and start.model_name == core.model_name and start.query.query_str == claim
    assert [n.node.node_id for n in end.nodes] == [n.node.node_id for n in reranked]
    (pair,) = debug.get_event_pairs(CBEventType.RERANKING)
    assert [n.node.node_id for n in pair[1].payload["nodes"]] == [n.node.node_id for n in reranked]


def test_same_order_and_scores_as_the_langchain_adapter(trained_model, scifact_slice, claim) -> None:
    from langchain_core.documents import Document

    from rerank_plugins.langchain import RerankCompressor

    items = list(scifact_slice.items())[:25]
    nodes = [NodeWithScore(node=TextNode(text=text, id_=doc_id), score=0.5) for doc_id, text in items]
    documents = [Document(page_content=text, id=doc_id) for doc_id, text in items]

    llama = RerankPostprocessor(model=trained_model, precision="fp32", top_n=10).postprocess_nodes(
        nodes, query_str=claim
    )
    chain = RerankCompressor(model=trained_model, precision="fp32", top_n=10).compress_documents(documents, claim)

    assert [n.node.node_id for n in llama] == [d.id for d in chain]
    assert [n.score for n in llama] == [d.metadata["relevance_score"] for d in chain]


def _nodes(scifact_slice: dict[str, str], start: int, count: int, chars: int | None = None) -> list[NodeWithScore]:
    return [
        NodeWithScore(node=TextNode(text=text[:chars], id_=doc_id, metadata={"doc_id": doc_id}), score=1.0 - i / 100)
        for i, (doc_id, text) in enumerate(list(scifact_slice.items())[start : start + count])
    ]


def test_inputs_unchanged_and_retrieval_score_kept_out_of_llm_text(core, scifact_slice, claim) -> None:
    nodes = _nodes(scifact_slice, 0, 12)
    before = copy.deepcopy(nodes)
    postprocessor = RerankPostprocessor(reranker=core, top_n=5, keep_retrieval_score=True)

    reranked = postprocessor.postprocess_nodes(nodes, query_bundle=QueryBundle(claim))

    assert [n.model_dump() for n in nodes] == [n.model_dump() for n in before]
    by_id = {n.node.node_id: n for n in nodes}
    for node in reranked:
        assert node.node.metadata["retrieval_score"] == by_id[node.node.node_id].score
        assert "retrieval_score" not in node.node.get_content(metadata_mode=MetadataMode.LLM)
        assert "retrieval_score" not in node.node.get_content(metadata_mode=MetadataMode.EMBED)
        assert node is not by_id[node.node.node_id]


def test_a_cut_document_says_so_in_node_metadata_as_in_langchain(core, scifact_slice, claim) -> None:
    """Item 13 of issue 27: a 100k-character node came back with no sign that most of it was never read."""
    nodes = _nodes(scifact_slice, 0, 3, chars=600)
    long_text = " ".join(scifact_slice.values())[:100_000]
    nodes.append(NodeWithScore(node=TextNode(text=long_text, id_="long"), score=0.5))
    postprocessor = RerankPostprocessor(reranker=core, top_n=None)

    reranked = {n.node.node_id: n.node for n in postprocessor.postprocess_nodes(nodes, query_bundle=QueryBundle(claim))}

    assert reranked["long"].metadata["rerank_truncated_tokens"] > 10_000
    assert reranked["long"].metadata["rerank_windows"] == 1
    assert all(reranked[n.node.node_id].metadata["rerank_truncated_tokens"] == 0 for n in nodes[:3])
    hidden = reranked["long"].get_content(metadata_mode=MetadataMode.LLM)
    assert "rerank_truncated_tokens" not in hidden and "rerank_windows" not in hidden
    assert "rerank_truncated_tokens" not in nodes[3].node.metadata  # the caller's node is untouched


def test_to_dict_from_dict_round_trip(trained_model: str, core: Reranker, scifact_slice, claim) -> None:
    original = RerankPostprocessor(
        model=trained_model,
        top_n=4,
        precision="fp32",
        batch_size=8,
        max_length=200,
        long_documents="window",
        keep_retrieval_score=True,
        score_threshold=0.01,
    )
    data = original.to_dict()
    assert data["class_name"] == "RerankPostprocessor"
    restored = RerankPostprocessor.from_dict(data)
    assert restored.to_dict() == data
    assert restored.core.options() == original.core.options()
    nodes = _nodes(scifact_slice, 0, 10)
    assert [n.node.node_id for n in restored.postprocess_nodes(nodes, query_str=claim)] == [
        n.node.node_id for n in original.postprocess_nodes(nodes, query_str=claim)
    ]
    shared = RerankPostprocessor(reranker=core, top_n=2)
    assert RerankPostprocessor.from_dict(shared.to_dict()).core.options() == core.options()


def test_no_query_no_nodes_and_bad_input(core: Reranker) -> None:
    postprocessor = RerankPostprocessor(reranker=core)
    with pytest.raises(ValueError, match="needs a query"):
        postprocessor.postprocess_nodes([NodeWithScore(node=TextNode(text="a"))])
    assert postprocessor.postprocess_nodes([], query_str="q") == []
    with pytest.raises(TypeError, match=r"nodes\[0\] must be a NodeWithScore, got TextNode"):
        postprocessor.postprocess_nodes([TextNode(text="a")], query_str="q")  # type: ignore[list-item]
    with pytest.raises(ValueError, match="either reranker= or model options"):
        RerankPostprocessor(reranker=core, batch_size=3)


def test_using_the_adapter_without_llama_index_says_how_to_install() -> None:
    script = (
        "import sys\n"
        "sys.modules['llama_index'] = None\n"
        "sys.modules['llama_index.core'] = None\n"
        "import rerank_plugins\n"
        "try:\n"
        "    import rerank_plugins.llama_index\n"
        "except ImportError as error:\n"
        "    assert 'pip install \"rerank-plugins[llamaindex]\"' in str(error), error\n"
        "else:\n"
        "    raise SystemExit('no ImportError')\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)


def test_unknown_keyword_is_refused_not_replaced_by_the_default_model(trained_model: str) -> None:
    with pytest.raises(TypeError, match=r"unknown option 'model_name'; did you mean 'model'\?"):
        RerankPostprocessor(model_name=trained_model)


class VerdictEvents(BaseEventHandler):
    """Collects the verdict events the dispatcher sends."""

    events: list[Any] = []

    def handle(self, event: Any, **kwargs: Any) -> None:
        if isinstance(event, RerankVerdictEvent):
            self.events.append(event)


async def test_the_verdict_event_reaches_the_root_dispatcher_even_when_no_node_is_kept(
    index: VectorStoreIndex, abstaining_core: Reranker, core: Reranker, claim: str, relevant_id: str
) -> None:
    from tests.paths import OFF_TOPIC_QUESTION

    handler = VerdictEvents(events=[])
    root = get_dispatcher()
    root.add_event_handler(handler)
    postprocessor = RerankPostprocessor(reranker=abstaining_core, top_n=3)
    engine = index.as_query_engine(similarity_top_k=10, node_postprocessors=[postprocessor], llm=MockLLM())
    try:
        nothing = engine.query(OFF_TOPIC_QUESTION)
        answered = await engine.aquery(claim)
        nodes = index.as_retriever(similarity_top_k=10).retrieve(OFF_TOPIC_QUESTION)
        kept = RerankPostprocessor(reranker=core, score_threshold=0.5).postprocess_nodes(
            nodes, query_str=OFF_TOPIC_QUESTION
        )
    finally:
        root.event_handlers.remove(handler)

    abstained, verdict, uncalibrated = handler.events
    assert nothing.source_nodes == [] and abstained.abstained is True
    assert abstained.kept == 0 and abstained.candidates == 10 and abstained.model_name == abstaining_core.model_name
    assert isinstance(abstained.p_any_relevant, float) and abstained.p_any_relevant < 0.5
    assert answered.source_nodes[0].node.node_id == relevant_id
    assert verdict.abstained is False and verdict.kept == 3 and verdict.p_any_relevant > 0.5
    assert {n.node.metadata["rerank_p_any_relevant"] for n in answered.source_nodes} == {verdict.p_any_relevant}
    assert kept == [] and uncalibrated.p_any_relevant is None and uncalibrated.abstained is False
    assert uncalibrated.kept == 0 and uncalibrated.model_dump()["class_name"] == "RerankVerdictEvent"
