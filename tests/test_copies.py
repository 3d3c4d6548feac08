"""The core and both adapters pickle, deep-copy and cross into a multiprocessing worker by their options,
as frameworks copy components (LangChain ``with_config``, LlamaIndex ``to_dict``, multiprocessing, Ray)."""

from __future__ import annotations

import copy
import multiprocessing
import pickle
from typing import Any

import pytest
from langchain_core.documents import Document
from llama_index.core.schema import NodeWithScore, TextNode

from rerank_plugins import Reranker
from rerank_plugins.langchain import RerankCompressor
from rerank_plugins.llama_index import RerankPostprocessor

QUERY = "Vitamin B12 deficiency raises homocysteine levels."
TEXTS = ["The Eiffel Tower is in Paris.", "Homocysteine rises when vitamin B12 is deficient.", "Statins lower LDL."]


def _copies(value: Any) -> list[Any]:
    return [copy.deepcopy(value), pickle.loads(pickle.dumps(value)), copy.copy(value)]


def test_reranker_copies_keep_every_option_and_the_scores(trained_model: str) -> None:
    reranker = Reranker(trained_model, precision="fp32", long_documents="window", window_overlap=32, cache_size=8)
    expected = reranker.score(QUERY, TEXTS)
    for clone in _copies(reranker):
        assert clone is not reranker and clone.options() == reranker.options()
        assert clone.score(QUERY, TEXTS) == expected


def test_adapter_copies_rank_the_same(trained_model: str) -> None:
    compressor = RerankCompressor(model=trained_model, precision="fp32", top_n=2)
    postprocessor = RerankPostprocessor(model=trained_model, precision="fp32", top_n=2)
    documents = [Document(page_content=text) for text in TEXTS]
    nodes = [NodeWithScore(node=TextNode(text=text)) for text in TEXTS]
    expected = [d.page_content for d in compressor.compress_documents(documents, QUERY)]
    assert expected[0] == TEXTS[1]
    for clone in _copies(compressor):
        assert [d.page_content for d in clone.compress_documents(documents, QUERY)] == expected
    for clone in _copies(postprocessor):
        assert [n.node.get_content() for n in clone.postprocess_nodes(nodes, query_str=QUERY)] == expected


def _rank_in_worker(compressor: RerankCompressor) -> list[str]:
    documents = [Document(page_content=text) for text in TEXTS]
    return [d.page_content for d in compressor.compress_documents(documents, QUERY)]


@pytest.mark.slow
def test_compressor_crosses_into_a_spawned_worker(trained_model: str) -> None:
    compressor = RerankCompressor(model=trained_model, precision="fp32", top_n=2)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        ranked = pool.apply(_rank_in_worker, (compressor,))
    assert ranked == _rank_in_worker(compressor)
