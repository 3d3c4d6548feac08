"""Score fusion: per-query min-max blend of cross-encoder and retrieval scores, in the core and adapters."""

from __future__ import annotations

import numpy as np
import pytest

from rerank_plugins import Reranker
from rerank_plugins.fusion import fuse, minmax


def test_minmax_and_fuse() -> None:
    np.testing.assert_allclose(minmax([2.0, 4.0, 3.0]), [0.0, 1.0, 0.5])
    np.testing.assert_allclose(minmax([5.0, 5.0]), [0.0, 0.0])
    assert fuse([0.0, 10.0], [1.0, 0.0], 0.75) == [0.25, 0.75]


@pytest.fixture(scope="module")
def core(random_model: str) -> Reranker:
    return Reranker(random_model, precision="fp32")


def test_weight_one_is_the_rerank_order_and_zero_the_retrieval_order(core: Reranker) -> None:
    documents = [f"document number {i} about topic {i % 3}" for i in range(8)]
    retrieval = [0.9, 0.1, 0.5, 0.7, 0.3, 0.8, 0.2, 0.6]
    plain = [r.index for r in core.rank("topic 2", documents)]
    only_model = core.rank("topic 2", documents, retrieval_scores=retrieval, fusion_weight=1.0)
    only_retrieval = core.rank("topic 2", documents, retrieval_scores=retrieval, fusion_weight=0.0)
    assert [r.index for r in only_model] == plain
    assert [r.index for r in only_retrieval] == sorted(range(8), key=lambda i: -retrieval[i])
    assert all(r.fused_score is not None and 0.0 <= r.fused_score <= 1.0 for r in only_model)
    assert all(r.fused_score is None for r in core.rank("topic 2", documents))


def test_fused_score_is_the_documented_blend(core: Reranker) -> None:
    documents = ["alpha", "beta", "gamma", "delta"]
    retrieval = [0.2, 0.9, 0.4, 0.1]
    scores = core.score("greek letters", documents)
    expected = fuse(scores, retrieval, 0.6)
    ranking = core.rank("greek letters", documents, retrieval_scores=retrieval, fusion_weight=0.6)
    assert {r.index: r.fused_score for r in ranking} == pytest.approx(dict(enumerate(expected)))
    assert [r.index for r in ranking] == sorted(range(4), key=lambda i: (-expected[i], i))


def test_rank_many_fuses_per_query(core: Reranker) -> None:
    queries, docs = ["a", "b"], [["x", "y", "z"], ["u", "v"]]
    retrieval = [[0.1, 0.2, 0.3], [0.5, 0.4]]
    together = core.rank_many(queries, docs, retrieval_scores_per_query=retrieval, fusion_weight=0.5)
    alone = [
        core.rank(q, d, retrieval_scores=r, fusion_weight=0.5) for q, d, r in zip(queries, docs, retrieval, strict=True)
    ]
    assert [[r.index for r in ranking] for ranking in together] == [[r.index for r in ranking] for ranking in alone]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"fusion_weight": 0.5}, ValueError, "fusion_weight needs retrieval_scores"),
        ({"retrieval_scores": [1.0, 2.0]}, ValueError, "without fusion_weight"),
        ({"retrieval_scores": [1.0], "fusion_weight": 0.5}, ValueError, "2 documents but 1 retrieval_scores"),
        ({"retrieval_scores": [1.0, 2.0], "fusion_weight": 1.5}, ValueError, r"fusion_weight must be .* \[0, 1\]"),
        ({"retrieval_scores": [1.0, "x"], "fusion_weight": 0.5}, TypeError, r"retrieval_scores\[1\] must be a number"),
        ({"retrieval_scores": [1.0, float("nan")], "fusion_weight": 0.5}, ValueError, "must be finite"),
    ],
)
def test_bad_fusion_arguments(core: Reranker, kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        core.rank("q", ["a", "b"], **kwargs)


def test_adapters_fuse_with_the_scores_they_receive(core: Reranker) -> None:
    from langchain_core.documents import Document
    from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode

    from rerank_plugins.langchain import RerankCompressor
    from rerank_plugins.llama_index import RerankPostprocessor

    texts = ["first text", "second text", "third text", "fourth text"]
    retrieval = [0.4, 0.9, 0.1, 0.6]
    expected = [r.index for r in core.rank("q", texts, retrieval_scores=retrieval, fusion_weight=0.3)]
    documents = [
        Document(page_content=t, id=str(i), metadata={"retrieval_score": s})
        for i, (t, s) in enumerate(zip(texts, retrieval, strict=True))
    ]
    nodes = [
        NodeWithScore(node=TextNode(text=t, id_=str(i)), score=s)
        for i, (t, s) in enumerate(zip(texts, retrieval, strict=True))
    ]

    chain = RerankCompressor(reranker=core, top_n=None, fusion_weight=0.3).compress_documents(documents, "q")
    llama = RerankPostprocessor(reranker=core, top_n=None, fusion_weight=0.3).postprocess_nodes(nodes, query_str="q")

    assert [int(d.id) for d in chain] == expected == [int(n.node.node_id) for n in llama]
    assert all("fused_score" in d.metadata for d in chain)
    # the node score is the fused score the order follows; the relevance stays in (hidden) metadata
    assert [n.score for n in llama] == [d.metadata["fused_score"] for d in chain]
    assert [n.score for n in llama] == sorted((n.score for n in llama), reverse=True)
    assert [n.node.metadata["relevance_score"] for n in llama] == [d.metadata["relevance_score"] for d in chain]
    assert all("fused_score" not in n.node.get_content(metadata_mode=MetadataMode.LLM) for n in llama)
    assert [n.score for n in nodes] == retrieval and all(not n.node.metadata for n in nodes)  # inputs unchanged
    with pytest.raises(ValueError, match=r"metadata\['retrieval_score'\]"):
        RerankCompressor(reranker=core, fusion_weight=0.3).compress_documents([Document(page_content="a")], "q")
    with pytest.raises(ValueError, match="retrieval score"):
        RerankPostprocessor(reranker=core, fusion_weight=0.3).postprocess_nodes(
            [NodeWithScore(node=TextNode(text="a"))], query_str="q"
        )
