"""The LangChain adapter inside real LangChain chains, with the real SciFact-trained cross-encoder."""

from __future__ import annotations

import copy
import subprocess
import sys
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_core.vectorstores import InMemoryVectorStore

from rerank_plugins import Reranker
from rerank_plugins.langchain import RerankCompressor, RerankCrossEncoder, RerankRetriever
from tests.langchain_parts import vector_store


@pytest.fixture(scope="module")
def store(bi_encoder_path: str, scifact_slice: dict[str, str]) -> InMemoryVectorStore:
    return vector_store(bi_encoder_path, scifact_slice)


@pytest.mark.slow
def test_contextual_compression_retriever_puts_the_relevant_abstract_first(
    store: InMemoryVectorStore, core: Reranker, claim: str, relevant_id: str
) -> None:
    from langchain_classic.retrievers import ContextualCompressionRetriever

    base = store.as_retriever(search_kwargs={"k": 10})
    assert [doc.id for doc in base.invoke(claim)].index(relevant_id) > 0  # the bi-encoder alone misses it

    retriever = ContextualCompressionRetriever(base_compressor=RerankCompressor(reranker=core), base_retriever=base)
    documents = retriever.invoke(claim)

    assert len(documents) == 3
    assert documents[0].id == relevant_id and documents[0].metadata["doc_id"] == relevant_id
    scores = [doc.metadata["relevance_score"] for doc in documents]
    assert all(type(score) is float and 0 <= score <= 1 for score in scores)
    assert scores == sorted(scores, reverse=True) and scores[0] > 0.5
    assert all(type(doc.metadata["rerank_score"]) is float for doc in documents)
    assert documents[0].metadata["retrieval_rank"] > 1


class PromptRecorder(BaseCallbackHandler):
    """Keeps the messages each chat model call received."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def on_chat_model_start(self, serialized: dict[str, Any], messages: list[list[Any]], **kwargs: Any) -> None:
        self.prompts.extend("\n".join(str(m.content) for m in batch) for batch in messages)


def test_lcel_chain_prompt_holds_reranked_documents_in_order(
    store: InMemoryVectorStore, core: Reranker, claim: str, relevant_id: str
) -> None:
    retriever = RerankRetriever(base_retriever=store.as_retriever(search_kwargs={"k": 10}), reranker=core, k=3)
    expected = retriever.invoke(claim)
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer from these abstracts only:\n{context}"), ("human", "{question}")]
    )
    llm = FakeListChatModel(responses=["CCL19 is present."])
    recorder = PromptRecorder()

    def format_documents(documents: list[Document]) -> str:
        return "\n\n".join(f"[{doc.id}] {doc.page_content}" for doc in documents)

    chain = (
        {"context": retriever | RunnableLambda(format_documents), "question": RunnableLambda(lambda q: q)}
        | prompt
        | llm
        | StrOutputParser()
    )
    answer = chain.invoke(claim, config={"callbacks": [recorder]})

    assert answer == "CCL19 is present."
    (received,) = recorder.prompts
    positions = [received.index(f"[{doc.id}]") for doc in expected]
    assert positions == sorted(positions)
    assert expected[0].id == relevant_id
    assert claim in received


def test_document_compressor_pipeline_with_splitter_then_reranker(core: Reranker, scifact_corpus, claim, relevant_id):
    from langchain_classic.retrievers.document_compressors import DocumentCompressorPipeline
    from langchain_text_splitters import CharacterTextSplitter

    splitter = CharacterTextSplitter(separator=". ", chunk_size=300, chunk_overlap=0)
    pipeline = DocumentCompressorPipeline(transformers=[splitter, RerankCompressor(reranker=core, top_n=2)])
    documents = [
        Document(page_content=scifact_corpus[doc_id], metadata={"doc_id": doc_id})
        for doc_id in [*list(scifact_corpus)[:5], relevant_id]
    ]

    chunks = pipeline.compress_documents(documents, claim)

    assert len(chunks) == 2
    assert all(chunk.metadata["doc_id"] == relevant_id for chunk in chunks[:1])
    assert all(len(chunk.page_content) <= 400 for chunk in chunks)
    assert chunks[0].metadata["relevance_score"] >= chunks[1].metadata["relevance_score"]


def test_stock_cross_encoder_reranker_uses_our_scorer(core: Reranker, scifact_slice, claim, relevant_id) -> None:
    from langchain_classic.retrievers.document_compressors import CrossEncoderReranker

    documents = [Document(page_content=text, id=doc_id) for doc_id, text in list(scifact_slice.items())[:40]]
    documents.insert(17, Document(page_content=scifact_slice[relevant_id], id=relevant_id))
    stock = CrossEncoderReranker(model=RerankCrossEncoder(core), top_n=2)

    top = stock.compress_documents(documents, claim)

    assert top[0].id == relevant_id
    assert RerankCrossEncoder(core).score([(claim, documents[17].page_content), (claim, "")]) == core.score(
        claim, [documents[17].page_content, ""]
    )


def test_inputs_are_unchanged_after_a_call(core: Reranker, scifact_slice: dict[str, str], claim: str) -> None:
    documents = [
        Document(page_content=text, id=doc_id, metadata={"doc_id": doc_id, "nested": {"tags": ["a"]}})
        for doc_id, text in list(scifact_slice.items())[:12]
    ]
    before = copy.deepcopy(documents)
    compressor = RerankCompressor(reranker=core, top_n=5)

    reranked = compressor.compress_documents(documents, claim)

    assert documents == before
    assert all("relevance_score" not in doc.metadata for doc in documents)
    assert all(new is not old for new in reranked for old in documents)
    assert {doc.id for doc in reranked} <= {doc.id for doc in documents}
    assert all(doc.page_content == scifact_slice[doc.id] for doc in reranked)


def test_compressor_options_and_errors(random_model: str, core: Reranker) -> None:
    built = RerankCompressor(model=random_model, precision="fp32", top_n=None, batch_size=4)
    assert built.core.model_name == random_model and built.core.batch_size == 4
    assert len(built.compress_documents([Document(page_content=str(i)) for i in range(5)], "q")) == 5
    assert built.compress_documents([], "q") == []
    with pytest.raises(ValueError, match="either reranker= or model options"):
        RerankCompressor(reranker=core, model=random_model)
    with pytest.raises(ValueError, match="top_n"):
        RerankCompressor(reranker=core, top_n=0)
    with pytest.raises(TypeError, match=r"documents\[1\] must be a langchain Document, got str"):
        built.compress_documents([Document(page_content="a"), "b"], "q")  # type: ignore[list-item]
    with pytest.raises(TypeError, match="query must be a str"):
        built.compress_documents([Document(page_content="a")], None)  # type: ignore[arg-type]


def test_score_threshold_drops_before_top_n(core: Reranker, scifact_slice, claim, relevant_id) -> None:
    documents = [Document(page_content=text, id=doc_id) for doc_id, text in list(scifact_slice.items())[60:70]]
    documents.append(Document(page_content=scifact_slice[relevant_id], id=relevant_id))
    kept = RerankCompressor(reranker=core, top_n=5, score_threshold=0.5).compress_documents(documents, claim)
    assert [doc.id for doc in kept] == [relevant_id]


def test_retriever_k_as_invoke_keyword_and_alias(store: InMemoryVectorStore, core: Reranker, claim: str) -> None:
    retriever = RerankRetriever(base_retriever=store.as_retriever(search_kwargs={"k": 10}), reranker=core, top_n=4)
    assert len(retriever.invoke(claim)) == 4
    assert len(retriever.invoke(claim, k=2)) == 2
    assert len(retriever.invoke(claim, top_n=1)) == 1
    with pytest.raises(ValueError, match="top_n must be >= 1"):
        retriever.invoke(claim, k=0)


def test_using_the_adapter_without_langchain_says_how_to_install() -> None:
    script = (
        "import sys\n"
        "sys.modules['langchain_core'] = None\n"
        "import rerank_plugins\n"
        "try:\n"
        "    import rerank_plugins.langchain\n"
        "except ImportError as error:\n"
        "    assert 'pip install \"rerank-plugins[langchain]\"' in str(error), error\n"
        "else:\n"
        "    raise SystemExit('no ImportError')\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)


def test_fusion_with_any_vector_store_through_the_scored_retriever(store, core, claim) -> None:
    from rerank_plugins.langchain import ScoredVectorStoreRetriever

    plain = RerankRetriever(base_retriever=store.as_retriever(search_kwargs={"k": 8}), reranker=core, k=3,
                            fusion_weight=0.7)  # fmt: skip
    with pytest.raises(ValueError, match=r"ScoredVectorStoreRetriever\(vector_store=store"):
        plain.invoke(claim)  # stock retrievers drop the score: the error says what to do

    with pytest.raises(ValueError, match="InMemoryVectorStore has no relevance scores: pass scores='similarity'"):
        ScoredVectorStoreRetriever(vector_store=store, k=8).invoke(claim)
    scored = ScoredVectorStoreRetriever(vector_store=store, k=8, scores="similarity")  # cosine: higher is better
    candidates = scored.invoke(claim)
    expected = store.similarity_search_with_score(claim, k=8)
    assert [(d.id, d.metadata["retrieval_score"]) for d in candidates] == [(d.id, s) for d, s in expected]
    assert all("retrieval_score" not in d.metadata for d, _ in expected)  # the store's documents are untouched
    fused = RerankRetriever(base_retriever=scored, reranker=core, k=3, fusion_weight=0.7).invoke(claim)
    assert len(fused) == 3 and all(isinstance(d.metadata["fused_score"], float) for d in fused)
    assert fused[0].metadata["fused_score"] >= fused[-1].metadata["fused_score"]
    distances = ScoredVectorStoreRetriever(vector_store=store, k=8, scores="distance").invoke(claim)
    assert [d.metadata["retrieval_score"] for d in distances] == [-d.metadata["retrieval_score"] for d in candidates]


class VerdictRecorder(BaseCallbackHandler):
    """Keeps the custom events and the retriever runs a LangChain run reports."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any, Any]] = []
        self.retriever_runs: list[Any] = []

    def on_custom_event(self, name: str, data: Any, *, run_id: Any, **kwargs: Any) -> None:
        self.events.append((name, data, run_id))

    def on_retriever_start(self, serialized: Any, query: str, *, run_id: Any, **kwargs: Any) -> None:
        self.retriever_runs.append(run_id)


async def test_with_verdict_tells_nothing_relevant_from_an_answer(
    store: InMemoryVectorStore, abstaining_core: Reranker, claim: str, relevant_id: str
) -> None:
    from tests.paths import OFF_TOPIC_QUESTION

    retriever = RerankRetriever(base_retriever=store.as_retriever(search_kwargs={"k": 10}), reranker=abstaining_core)
    with_verdict = retriever.with_verdict()

    nothing = with_verdict.invoke(OFF_TOPIC_QUESTION)
    assert nothing["documents"] == [] and nothing["abstained"] is True
    assert isinstance(nothing["p_any_relevant"], float) and nothing["p_any_relevant"] < 0.5
    assert await with_verdict.ainvoke(OFF_TOPIC_QUESTION) == nothing

    answer = await with_verdict.ainvoke(claim)
    assert answer["abstained"] is False and answer["p_any_relevant"] > 0.5
    assert [d.id for d in answer["documents"]] == [d.id for d in retriever.invoke(claim)]
    assert answer["documents"][0].id == relevant_id and len(answer["documents"]) == 3
    assert {d.metadata["rerank_p_any_relevant"] for d in answer["documents"]} == {answer["p_any_relevant"]}
    assert len(retriever.with_verdict(k=1).invoke(claim)["documents"]) == 1

    def reply(verdict: dict[str, Any]) -> str:
        if verdict["abstained"]:
            return f"Nothing relevant in the abstracts (P = {verdict['p_any_relevant']:.2f})."
        return f"Top abstract: {verdict['documents'][0].id}"

    chain = with_verdict | RunnableLambda(reply)  # an LCEL chain routes on the verdict
    assert chain.batch([OFF_TOPIC_QUESTION, claim]) == [
        f"Nothing relevant in the abstracts (P = {nothing['p_any_relevant']:.2f}).",
        f"Top abstract: {relevant_id}",
    ]


def test_with_verdict_without_abstention_carries_the_ranking_p_any(store: InMemoryVectorStore, core: Reranker) -> None:
    from tests.paths import OFF_TOPIC_QUESTION

    base = store.as_retriever(search_kwargs={"k": 10})
    retriever = RerankRetriever(base_retriever=base, reranker=core, score_threshold=0.5)
    verdict = retriever.with_verdict().invoke(OFF_TOPIC_QUESTION)
    assert verdict == {"documents": [], "p_any_relevant": None, "abstained": False}  # uncalibrated: no P(any)


async def test_the_verdict_event_reaches_handlers_and_astream_events_when_nothing_is_kept(
    store: InMemoryVectorStore, abstaining_core: Reranker
) -> None:
    from langchain_classic.retrievers import ContextualCompressionRetriever

    from tests.paths import OFF_TOPIC_QUESTION

    base = store.as_retriever(search_kwargs={"k": 10})
    retriever = RerankRetriever(base_retriever=base, reranker=abstaining_core)
    recorder = VerdictRecorder()
    assert retriever.invoke(OFF_TOPIC_QUESTION, config={"callbacks": [recorder]}) == []
    ((name, data, run_id),) = recorder.events
    p_any = data["p_any_relevant"]
    assert name == "rerank_verdict" and data == {"p_any_relevant": p_any, "abstained": True} and p_any < 0.5
    assert run_id == recorder.retriever_runs[0]  # attached to the rerank retriever's own run

    events = [event async for event in retriever.astream_events(OFF_TOPIC_QUESTION, version="v2")]
    (custom,) = [event for event in events if event["event"] == "on_custom_event"]
    (start,) = [e for e in events if e["event"] == "on_retriever_start" and e["name"] == "RerankRetriever"]
    assert custom["name"] == "rerank_verdict" and custom["data"] == data and custom["run_id"] == start["run_id"]

    compressor = RerankCompressor(reranker=abstaining_core)
    pipeline = ContextualCompressionRetriever(base_compressor=compressor, base_retriever=base)
    recorders = [VerdictRecorder(), VerdictRecorder()]
    assert pipeline.invoke(OFF_TOPIC_QUESTION, config={"callbacks": [recorders[0]]}) == []
    assert await pipeline.ainvoke(OFF_TOPIC_QUESTION, config={"callbacks": [recorders[1]]}) == []
    for recorder in recorders:  # sync and async: attached to the compression retriever's run
        assert [(name, data) for name, data, _ in recorder.events] == [("rerank_verdict", data)]
        assert recorder.events[0][2] == recorder.retriever_runs[0]

    candidates = base.invoke(OFF_TOPIC_QUESTION)
    assert compressor.compress_documents(candidates, OFF_TOPIC_QUESTION) == []  # outside any run: no event, no error
    assert await compressor.acompress_documents(candidates, OFF_TOPIC_QUESTION) == []
    recorder = VerdictRecorder()
    inside = RunnableLambda(lambda query: compressor.compress_documents(candidates, query))
    assert inside.invoke(OFF_TOPIC_QUESTION, config={"callbacks": [recorder]}) == []
    assert [(name, data) for name, data, _ in recorder.events] == [("rerank_verdict", data)]  # the lambda's run
