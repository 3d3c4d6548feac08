"""Hostile input through the core and both adapters: a correct result or a clear error, never a torch crash."""

from __future__ import annotations

import asyncio
import resource

import pytest
from langchain_core.documents import Document
from llama_index.core.schema import NodeWithScore, TextNode

from rerank_plugins import Reranker
from rerank_plugins.langchain import RerankCompressor
from rerank_plugins.llama_index import RerankPostprocessor

ODD_TEXTS = [
    "",
    "   \t\n  ",
    "🙂🚀🧬 emoji only 👩‍🔬",
    "שלום עולם — right-to-left, مرحبا بالعالم",
    "combining: e\u0301\u0302\u0303\u0304 a\u0308\u0308",
    "zero\u200bwidth\u200c\u200djoiners\ufeff",
    "NUL \x00 and controls \x01\x07\x1b[31m\x7f",
    "lone surrogate \ud83d here",
    "\u202eoverride\u202c",
    "x" * 5000,
]
NOT_TEXT = [None, 42, 3.5, b"bytes", {"text": "dict"}, ["list"]]


@pytest.fixture(scope="module")
def core(random_model: str) -> Reranker:
    return Reranker(random_model, precision="fp32", max_length=128, show_progress_bar=False)


def test_odd_strings_are_scored_in_core_and_adapters(core: Reranker) -> None:
    ranking = core.rank("🙂 query \x00", ODD_TEXTS)
    assert sorted(r.index for r in ranking) == list(range(len(ODD_TEXTS)))
    assert all(0.0 <= r.relevance_score <= 1.0 for r in ranking)

    documents = RerankCompressor(reranker=core, top_n=None).compress_documents(
        [Document(page_content=text) for text in ODD_TEXTS], "query"
    )
    nodes = RerankPostprocessor(reranker=core, top_n=None).postprocess_nodes(
        [NodeWithScore(node=TextNode(text=text)) for text in ODD_TEXTS], query_str="query"
    )
    assert sorted(d.page_content for d in documents) == sorted(ODD_TEXTS)
    assert len(nodes) == len(ODD_TEXTS)


@pytest.mark.parametrize("bad", NOT_TEXT, ids=lambda value: type(value).__name__)
def test_non_text_gets_a_type_error_everywhere(core: Reranker, bad: object) -> None:
    with pytest.raises(TypeError, match=r"documents\[1\] must be a str"):
        core.rank("q", ["fine", bad])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="query must be a str"):
        core.rank(bad, ["fine"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"documents\[1\] must be a langchain Document"):
        RerankCompressor(reranker=core).compress_documents([Document(page_content="a"), bad], "q")  # type: ignore[list-item]
    with pytest.raises(TypeError, match="query must be a str"):
        RerankCompressor(reranker=core).compress_documents([Document(page_content="a")], bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"nodes\[0\] must be a NodeWithScore"):
        RerankPostprocessor(reranker=core).postprocess_nodes([bad], query_str="q")  # type: ignore[list-item]
    if bad is not None:  # None means "no query" to LlamaIndex: a ValueError, tested in test_llama_index.py
        with pytest.raises(TypeError, match="query must be a str"):
            RerankPostprocessor(reranker=core).postprocess_nodes(
                [NodeWithScore(node=TextNode(text="a"))],
                query_str=bad,  # type: ignore[arg-type]
            )


def test_one_megabyte_document_is_truncated_with_bounded_memory(core: Reranker) -> None:
    huge = ("lorem ipsum dolor sit amet, " * 40_000)[:1_000_000]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ranking = core.rank("lorem", [huge, "short"])
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    result = next(r for r in ranking if r.index == 0)
    assert result.truncated_tokens > 300_000
    assert result.windows == 1
    assert grown_mb < 500


@pytest.mark.slow
def test_ten_thousand_documents(trained_model: str) -> None:
    fast = Reranker(trained_model)  # the default runtime and precision: what a user ranking 10,000 documents gets
    documents = [f"document number {i} about {'cells' if i % 7 else 'proteins'}" for i in range(10_000)]
    ranking = fast.rank("proteins", documents, top_n=10)
    assert len(ranking) == 10 and len({r.index for r in ranking}) == 10
    assert fast.stats.pairs == 10_000


@pytest.mark.slow
async def test_two_hundred_concurrent_async_calls_through_each_adapter(core: Reranker) -> None:
    jobs = [
        (f"query {i} 🙂", [f"doc {i} {j} {ODD_TEXTS[(i + j) % len(ODD_TEXTS)][:40]}" for j in range(5)])
        for i in range(200)
    ]
    compressor = RerankCompressor(reranker=core, top_n=3)
    postprocessor = RerankPostprocessor(reranker=core, top_n=3)
    ranked = [core.rank(q, docs, top_n=3) for q, docs in jobs]
    expected = [[r.document for r in ranking] for ranking in ranked]
    scores = [[r.relevance_score for r in ranking] for ranking in ranked]

    chains = await asyncio.gather(
        *(compressor.acompress_documents([Document(page_content=d) for d in docs], q) for q, docs in jobs)
    )
    llamas = await asyncio.gather(
        *(
            postprocessor.apostprocess_nodes([NodeWithScore(node=TextNode(text=d)) for d in docs], query_str=q)
            for q, docs in jobs
        )
    )

    assert [[d.page_content for d in docs] for docs in chains] == expected
    assert [[n.node.get_content() for n in nodes] for nodes in llamas] == expected
    for chain, llama, want in zip(chains, llamas, scores, strict=True):  # the scores too, not just the order
        assert [d.metadata["relevance_score"] for d in chain] == pytest.approx(want, abs=1e-5)
        assert [n.score for n in llama] == pytest.approx(want, abs=1e-5)
